"""Which probes do not apply on this guest, as root establishes it (never as the user says).

A probe script may stop with ``na REASON`` (exit 97, ``STAGINGVM-NA:``) when the route it
tries is missing: no python3, no compose plugin, no fail2ban. But the user's side of the
guest is the thing under test: its login shell or start-up files can print that line for
every probe. So the judge accepts "not applicable" only for a probe listed in the map that
``parse`` returns, which comes from root's own look (``SCRIPT``, run as root): a tool absent
from every system directory, docker's compose plugin refusing to run as root, the docker
client unreadable by the user. Target discovery (issue 8) may add to this map; the judge's
interface is only the map ``{probe id: reason}``.
"""

from __future__ import annotations

import shlex

# Root looks in the system directories of Debian and of NixOS (nixos/modules/config/
# system-path.nix: /run/current-system/sw; security/wrappers: /run/wrappers/bin).
ROOT_PATH = (
    "/run/wrappers/bin:/run/current-system/sw/bin:/run/current-system/sw/sbin:"
    "/nix/var/nix/profiles/default/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
    "/sbin:/bin"
)

# probe id -> the tool it needs (absent everywhere root looks: not applicable).
NEEDS_TOOL = {
    "aw-python-socket-bind": "python3",
    "aw-curl-socket-exec": "curl",
    "aw-curl-socket-inspect": "curl",
    "gn-systemd-run": "systemd-run",
    "ns-journalctl-pager": "script",
    "ns-fail2ban-actions": "fail2ban-client",
}
NEEDS_COMPOSE = ("ho-compose-file",)
NEEDS_READABLE_DOCKER = ("aw-copied-binary",)


def script(user: str, docker: str) -> str:
    """Root's look: one ``NA<TAB>probe<TAB>reason`` line per probe that cannot apply."""
    lines = [f"export PATH={shlex.quote(ROOT_PATH)}"]
    for probe, tool in sorted(NEEDS_TOOL.items()):
        t = shlex.quote(tool)
        reason = shlex.quote(f"{tool} is not installed (root found it in no system directory)")
        lines.append(f"command -v {t} >/dev/null 2>&1 || printf 'NA\\t%s\\t%s\\n' {probe} {reason}")
    d = shlex.quote(docker)
    for probe in NEEDS_COMPOSE:
        reason = shlex.quote(
            "docker compose is not installed (root: `docker compose version` fails)"
        )
        lines.append(
            f"timeout 60 {d} compose version >/dev/null 2>&1 "
            f"|| printf 'NA\\t%s\\t%s\\n' {probe} {reason}"
        )
    u = shlex.quote(user)
    for probe in NEEDS_READABLE_DOCKER:
        reason = shlex.quote(f"{docker} is not readable by {user} (checked by root)")
        lines.append(
            f"runuser -u {u} -- test -r {d} 2>/dev/null "
            f"|| printf 'NA\\t%s\\t%s\\n' {probe} {reason}"
        )
    lines.append("echo APPLICABILITY-OK")
    return "\n".join(lines) + "\n"


def parse(output: str) -> dict[str, str] | None:
    """The map ``{probe id: reason}``; None when root's look did not finish."""
    if "APPLICABILITY-OK" not in output:
        return None
    found: dict[str, str] = {}
    for line in output.splitlines():
        parts = line.split("\t")
        if parts[0] == "NA" and len(parts) == 3:
            found[parts[1]] = parts[2]
    return found
