"""From discovered facts to what the probes run: preamble values and premises.

``probe_values`` gives the variables the probe preamble exports (each real client, the
directories that hold one, the sockets the daemon serves, how the sudo rules spell each
tool). ``not_applicable`` is the clean interface for the judge: ``{probe id: reason}``,
derived from root-side facts only (a tool root cannot find, no real client, no compose
plugin); controls never appear in it.
"""

from __future__ import annotations

from stagingvm.checks.preamble import HELPER
from stagingvm.checks.target import sudorules
from stagingvm.checks.target.facts import TargetFacts

# probe id -> the tool root must find for the probe's route to exist on this target
_NEEDS_TOOL = {
    "ns-journalctl-pager": ("journalctl", "script"),
    "ns-journalctl-args": ("journalctl",),
    "ns-iptables-modprobe": ("iptables",),
    "ns-fail2ban-actions": ("fail2ban-client",),
    "ns-sshd-config": ("sshd",),
    "ns-ss-kill": ("ss",),
    "gn-systemd-run": ("systemd-run",),
    "aw-python-socket-bind": ("python3",),
    "aw-curl-socket-exec": ("curl",),
    "aw-curl-socket-inspect": ("curl",),
}
_NEEDS_CLIENT = ("aw-full-path", "aw-env-path", "aw-command-p", "aw-copied-binary")
_NEEDS_SOCKET = (
    "aw-curl-socket-exec",
    "aw-curl-socket-inspect",
    "aw-python-socket-bind",
    "ho-docker-sock",
)
_NEEDS_HELPER = ("ha-run-image-smuggle", "ha-inspect-other", "ha-run-mount-escape")


def real_client(facts: TargetFacts, override: str = "") -> str:
    """The client root's fixtures use: the policy's ``[host] docker``, else discovery's."""
    if override:
        return override
    real = facts.real_clients()
    return real[0].path.spelled if real else ""


def probe_values(
    facts: TargetFacts, override: str = "", helper_path: str = HELPER
) -> dict[str, str]:
    """The preamble's target variables; *override* is the policy's ``[host] docker``."""
    real = [c.path.spelled for c in facts.real_clients()]
    dirs = facts.real_client_dirs()
    if override:
        real, dirs = [override], [override.rsplit("/", 1)[0] or "/"]
    bare = sudorules.sudo_runs_bare(facts)
    return {
        "D": real[0] if real else "",
        "DS": "\n".join(real),
        "DDIRS": "\n".join(dirs),
        "SOCKS": "\n".join(facts.socket_paths()),
        "SD": sudorules.sudo_spelling("docker", facts) or (real[0] if real else ""),
        "JCTL": sudorules.sudo_spelling("journalctl", facts),
        "IPT": sudorules.sudo_spelling("iptables", facts),
        "SSHD": sudorules.sudo_spelling("sshd", facts),
        "SS": sudorules.sudo_spelling("ss", facts),
        "F2B": sudorules.sudo_spelling("fail2ban-client", facts),
        "SUDO": sudorules.sudo_spelling("sudo", facts) or facts.tool("sudo"),
        "BARE": "\n".join(bare),
        "HELPER": helper_path,
    }


def not_applicable(
    facts: TargetFacts, override: str = "", helper_path: str = HELPER
) -> dict[str, str]:
    """``{probe id: reason}`` from root's facts alone (never from the user's output)."""
    out: dict[str, str] = {}
    for ident, tools in _NEEDS_TOOL.items():
        missing = [t for t in tools if not facts.tool(t)]
        if missing:
            out[ident] = f"{', '.join(missing)} not installed (root found none)"
    if not facts.real_clients() and not override:
        for ident in _NEEDS_CLIENT:
            out[ident] = "no real docker client on this host (root found none)"
    if "aw-command-p" not in out and facts.conf_path and facts.default_path_client() is None:
        out["aw-command-p"] = (
            f"no real docker client in the system default PATH ({':'.join(facts.conf_path)}), "
            "which `command -p` searches (root found none)"
        )
    if not facts.socket_paths():
        for ident in _NEEDS_SOCKET:
            out.setdefault(ident, "the daemon serves no unix socket (root found none)")
    if not facts.compose_available():
        out["ho-compose-file"] = "docker compose is not installed (root's client has no compose)"
    helper = facts.resolved.get(helper_path)
    if helper is None or not helper.exists:
        for ident in _NEEDS_HELPER:
            out[ident] = f"no helper {helper_path} on this host"
    if not sudorules.sudo_runs_bare(facts):
        out["ns-sudo-bare-path"] = "no sudo rule runs sudo with a bare command name"
    return out
