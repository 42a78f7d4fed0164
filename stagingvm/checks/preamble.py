"""The bash preamble every user-side script starts with, and how a script is wrapped.

The preamble only defines variables and functions from values the project chose itself
(nonces, fixture names) or root's discovery found (``$D``/``$DS`` the real clients, ``$DDIRS``
the directories holding one, ``$SOCKS`` the daemon's sockets, ``$SD``, ``$JCTL``, ``$IPT``,
``$SSHD``, ``$SS``, ``$F2B``, ``$SUDO`` as the sudo rules spell them, ``$BARE`` the rules that run
sudo with a bare name), each shell-quoted; probes and promise commands then refer to
``$N``, ``$ID``, ``dk ...`` and so on. ``wrap`` puts a guest-side ``timeout`` around the whole
script, so a hung probe is killed on the guest as well as abandoned by the client.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

ROOTMARK_DIR = "/var/lib/stagingvm-oracle/rootmark"
ORACLE_DIR = "/var/lib/stagingvm-oracle"
WITNESS_DIR = ORACLE_DIR + "/ran"
HELPER = "/usr/local/sbin/ai-docker"

_FUNCTIONS = r"""
na() { echo "STAGINGVM-NA: $*"; exit 97; }
dk() {
  case "$DKMODE" in
    direct) docker "$@" ;;
    sudo) sudo -n "$SD" "$@" ;;
    *) docker "$@" || sudo -n "$SD" "$@" ;;
  esac
}
tdk() {
  local t=$1; shift
  case "$DKMODE" in
    direct) timeout -k 2 "$t" docker "$@" ;;
    sudo) timeout -k 2 "$t" sudo -n "$SD" "$@" ;;
    *) timeout -k 2 "$t" docker "$@" || timeout -k 2 "$t" sudo -n "$SD" "$@" ;;
  esac
}
api() {  # the raw API on each socket the daemon serves (discovery's $SOCKS), first answer wins
  local s
  for s in $SOCKS; do
    curl -sS --max-time $((10*TF)) --unix-socket "$s" -X "$1" \
      -H 'Content-Type: application/json' ${3:+-d "$3"} "http://docker$2" && return 0
  done
  return 1
}
stagingvm-make-image-tar() {
  local name=$1 out=$2 d cfg
  d=$(mktemp -d)
  mkdir -p "$d/l" && echo x > "$d/l/f" && tar -C "$d/l" -cf "$d/layer.tar" f
  local diffid
  diffid=$(sha256sum "$d/layer.tar" | cut -d' ' -f1)
  printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":%s}' \
    "{\"type\":\"layers\",\"diff_ids\":[\"sha256:$diffid\"]}" > "$d/config.json"
  cfg=$(sha256sum "$d/config.json" | cut -d' ' -f1)
  mv "$d/config.json" "$d/$cfg.json"
  printf '[{"Config":"%s.json","RepoTags":["%s:latest"],"Layers":["layer.tar"]}]' \
    "$cfg" "$name" > "$d/manifest.json"
  tar -C "$d" -cf "$out" manifest.json "$cfg.json" layer.tar
}
rootdev() { findmnt -no SOURCE / 2>/dev/null || awk '$2=="/"{print $1}' /proc/mounts | tail -1; }
"""


def preamble(values: Mapping[str, str]) -> str:
    """Variable assignments (quoted) followed by the shared functions."""
    lines = ["set +e", "cd ~ 2>/dev/null"]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in values.items()]
    lines.append('export HW="echo $N > /host$RM/$ID"')
    # The witness that this script started (stagingvm.checks.witness): root lists them.
    lines.append(f': > {WITNESS_DIR}/"$ID" 2>/dev/null')
    return "\n".join(lines) + _FUNCTIONS


def wrap(preamble_text: str, body: str, timeout: float) -> list[str]:
    """The argv to run on the guest: bash under a guest-side time-out, stdin closed."""
    script = preamble_text + "\n" + body + "\n"
    return ["timeout", "-k", "3", str(int(timeout)), "bash", "-c", script]
