"""The two fixed discovery scripts: one run as the policy's user, one as root.

Both print tab-separated lines ``TAG<TAB>field...`` (tabs and newlines inside a field are
turned into spaces, each field cut at 4 KiB) and nothing else that matters; the parser in
``stagingvm.checks.target.parse`` reads them. The user's script runs first, in the same kind
of SSH exec session the probes get; what it prints is untrusted (the user controls its
shell start-up files and its PATH) and is only ever *shown*, or used as a list of
directories for root to look into. Root's script decides every fact a verdict may rest on.

Root never executes a file that someone else could have written: a candidate docker client
is run (``--version``, ``compose version``) only when the file and its directory are owned
by root and writable by nobody else.
"""

from __future__ import annotations

# Directories root looks into for a ``docker`` (and the neighbour tools) besides those on
# the user's PATH and in the PAM environment: the Debian layout and the NixOS one
# (nixos/modules/security/wrappers/default.nix: /run/wrappers/bin; programs/environment.nix:
# /run/current-system/sw and /nix/var/nix/profiles/default; config/users-groups.nix:
# ~/.nix-profile and /etc/profiles/per-user/USER).
ROOT_PATH = (
    "/run/wrappers/bin:/run/current-system/sw/bin:/run/current-system/sw/sbin:"
    "/nix/var/nix/profiles/default/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
    "/sbin:/bin"
)

# The neighbour tools the probes and the sudo rules name, and those the probes need.
TOOLS = (
    "sudo",
    "journalctl",
    "iptables",
    "sshd",
    "ss",
    "fail2ban-client",
    "systemd-run",
    "script",
    "python3",
    "curl",
    "busybox",
    "su",
)

# Only shell built-ins in the hot paths: under software emulation each fork and exec costs
# tens of milliseconds, and discovery resolves a hundred paths.
_EMIT = r"""
emit() { local out=$1 f; shift
  for f in "$@"; do f=${f//[$'\t\n\r']/ }; out+=$'\t'"${f:0:4096}"; done
  printf '%s\n' "$out"; }
"""

USER_SCRIPT = (
    _EMIT
    + r"""
emit SSHPATH "$PATH"
emit LOGINPATH "$(timeout 20 bash -l -c 'printf %s "$PATH"' </dev/null 2>/dev/null)"
emit DOCKERHOST "${DOCKER_HOST-}"
emit CMDV "$(command -v docker 2>/dev/null)"
n=0; oldifs=$IFS; IFS=:
for d in $PATH; do IFS=$oldifs; n=$((n+1)); [ $n -gt 64 ] && break
  [ -e "$d/docker" ] && emit UCLIENT "$d/docker" "$(readlink -f "$d/docker" 2>/dev/null)"
done
IFS=$oldifs
emit UGROUPS "$(id -Gn 2>/dev/null)"
echo DISCOVER-USER-OK
"""
)

ROOT_SCRIPT = (
    _EMIT
    + r"""
set +e
export PATH=$ROOTPATH
U=$USERNAME
home=$(getent passwd "$U" | cut -d: -f6)
emit CONFPATH "$(getconf PATH 2>/dev/null)"  # what `command -p` searches
emit USER "$U" "$(id -u "$U" 2>/dev/null)" "$(id -Gn "$U" 2>/dev/null)" "$home"
[ -r /etc/pam/environment ] && grep -E '^[[:space:]]*PATH[[:space:]]' /etc/pam/environment \
  | head -n 4 | while IFS= read -r l; do emit PAMPATH "$l"; done
grep -hs DOCKER_HOST /etc/environment /etc/pam/environment /etc/set-environment /etc/profile \
  /etc/profile.d/* 2>/dev/null | head -n 8 | while IFS= read -r l; do emit ENVDH "$l"; done
trusted() {  # root-owned, nobody else may write it or its directory
  local f=$1 d; d=$(dirname "$f")
  set -- $(stat -L -c '%u %a' "$f" 2>/dev/null) $(stat -L -c '%u %a' "$d" 2>/dev/null)
  [ "$1" = 0 ] && [ "$3" = 0 ] || return 1
  [ $(( 0$2 & 022 )) = 0 ] && [ $(( 0$4 & 022 )) = 0 ]; }
kind() { local h=; [ -f "$1" ] || { echo other; return; }  # never open a FIFO or a device
  LC_ALL=C IFS= read -r -n 4 -d '' h < "$1" 2>/dev/null
  case $h in $'\x7f'ELF*) echo elf ;; '#!'*) echo script ;; '') echo empty ;;
    *) echo other ;; esac }
resolve() {  # RES spelled resolved dev:ino owner mode kind; $RESOLVED: the file it runs
  local p=$1 r id owner mode; RESOLVED=
  [ -e "$p" ] || { emit RES "$p" "" "" "" "" missing; return; }
  r=$(readlink -f "$p"); RESOLVED=$r
  read -r id owner mode <<<"$(stat -L -c '%d:%i %U %a' "$p")"
  emit RES "$p" "$r" "$id" "$owner" "$mode" "$(kind "$r")"
}
declare -A VER CMP VRC  # by resolved file: each client runs once, however many spellings it has
client() {  # CLIENT spelled origin + RES; VERSION when root may run it
  local p=$1 origin=$2 r
  [ -e "$p" ] || return
  emit CLIENT "$p" "$origin"
  case " $seen " in *" $p "*) return ;; esac  # one look per path, however often it is met
  seen="$seen $p"
  resolve "$p"
  r=$RESOLVED
  if [ "$(kind "$r")" = elf ] && trusted "$r"; then
    if [ -z "${VER[$r]:-}" ]; then  # an answer is kept; no answer is asked again
      VER[$r]=$(timeout $((15*TF)) "$r" --version </dev/null 2>/dev/null | head -c 200
        exit "${PIPESTATUS[0]}")
      VRC[$r]=$?
      [ -n "${VER[$r]}" ] &&
        CMP[$r]=$(timeout $((30*TF)) "$r" compose version </dev/null 2>/dev/null | head -c 200)
    fi
    emit VERSION "$p" "${VER[$r]}" "${CMP[$r]:-}" "${VRC[$r]}"
  fi
}
seen=
dirs="$ROOTPATH:$(getconf PATH 2>/dev/null):/etc/profiles/per-user/$U/bin:$home/.nix-profile/bin"
dirs="$dirs:$USERPATH"
n=0; oldifs=$IFS; IFS=:
for d in $dirs; do IFS=$oldifs; n=$((n+1)); [ $n -gt 96 ] && break
  case $d in /*) client "$d/docker" "path:$d" ;; esac
done
IFS=$oldifs
n=0; for f in /nix/store/*-docker-*/bin/docker; do [ -e "$f" ] || continue
  n=$((n+1)); [ $n -gt 16 ] && break; client "$f" store; done
for c in /proc/[0-9]*/comm; do
  comm=; read -r comm < "$c" 2>/dev/null; [ "$comm" = dockerd ] || continue
  p=${c%/comm}; pid=${p#/proc/}
  exe=$(readlink "$p/exe" 2>/dev/null)
  emit DAEMON "$pid" "$(stat -c %U "$p" 2>/dev/null)" "$exe" \
    "$(tr '\0' '\t' < "$p/cmdline" 2>/dev/null | head -c 4000)"
  bin=$(dirname "$exe")
  client "$bin/docker" "beside:$exe"
  client "$(dirname "$bin")/bin/docker" "beside:$exe"
  inodes=$(ls -l "$p/fd" 2>/dev/null | grep -o 'socket:\[[0-9]*\]' | tr -dc '0-9\n' \
    | sort -u | tr '\n' ' ')
  awk -v ino=" $inodes" 'NR>1 && index(ino, " " $7 " ") && $6 == "01" && $8 != "" {print $8}' \
    "$p/net/unix" 2>/dev/null | sort -u | head -n 16 | while IFS= read -r s; do
      emit SOCK "$pid" "$s" "$(stat -c '%a' "$s" 2>/dev/null)" "$(stat -c '%U' "$s" 2>/dev/null)" \
        "$(stat -c '%G' "$s" 2>/dev/null)"
  done
  for t in tcp tcp6; do
    awk -v ino=" $inodes" 'NR>1 && index(ino, " " $10 " ") && $4 == "0A" {print $2}' \
      "$p/net/$t" 2>/dev/null | head -n 8 | while IFS= read -r a; do emit TCP "$pid" "$t" "$a"; done
  done
  cfg=$(tr '\0' '\n' < "$p/cmdline" 2>/dev/null | sed -n 's/^--config-file=//p' | head -n 1)
  [ -n "$cfg" ] || cfg=/etc/docker/daemon.json
  [ -f "$cfg" ] && emit DAEMONJSON "$pid" "$cfg" "$(head -c 16384 "$cfg" | base64 | tr -d '\n')"
done
systemctl list-sockets --all --no-legend --no-pager 2>/dev/null | grep -i docker | head -n 16 \
  | while IFS= read -r l; do emit SDSOCK "$l"; done
sudo -n -l -U "$U" 2>&1 | head -n 400 | while IFS= read -r l; do emit SUDOL "$l"; done
for w in $(sudo -n -l -U "$U" 2>/dev/null | grep -oE '(^|[[:space:],:])/[^[:space:],]+' \
           | tr -d ' ,:' | sort -u | head -n 64) $ALLOWED; do
  case $w in /*) resolve "$w" ;; esac
done
for t in $TOOLS; do emit TOOL "$t" "$(command -v "$t" 2>/dev/null)"
  p=$(command -v "$t" 2>/dev/null); [ -n "$p" ] && resolve "$p"
  n=0; oldifs=$IFS; IFS=:
  for d in $USERPATH; do IFS=$oldifs; n=$((n+1)); [ $n -gt 64 ] && break
    case $d in /*) [ -f "$d/$t" ] && [ -x "$d/$t" ] && emit UPATH "$t" "$d/$t" ;; esac
  done; IFS=$oldifs
done
[ -e "$HELPER" ] && resolve "$HELPER"
echo DISCOVER-ROOT-OK
"""
)
