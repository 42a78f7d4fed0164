"""What discovery found on one target, as plain data (pure, no I/O).

``root`` facts come from root's own script and may decide things: which docker clients
are real, which tools exist, which probes are not applicable. ``user`` facts come from the
restricted user's session: they are shown in the report (what the probes really get) and
never decide a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Resolved:
    """A path as spelled, the file it runs (``readlink -f``), and that file's identity."""

    spelled: str
    resolved: str = ""
    ident: str = ""  # "dev:ino" of the file it runs; "" when missing
    owner: str = ""
    mode: str = ""
    kind: str = "missing"  # elf | script | empty | other | missing

    @property
    def exists(self) -> bool:
        return self.kind != "missing"

    def to_json(self) -> dict[str, str]:
        return {
            "path": self.spelled,
            "runs": self.resolved,
            "ident": self.ident,
            "owner": self.owner,
            "mode": self.mode,
            "kind": self.kind,
        }


@dataclass(frozen=True)
class Client:
    """A ``docker`` found somewhere, with where it was found and what it is."""

    path: Resolved
    origins: tuple[str, ...]
    version: str = ""  # `--version` as root ran it; "" when root would not run it
    compose: str = ""  # `compose version`, "" when the plugin is missing

    @property
    def real(self) -> bool:
        """A real docker client: an executable root trusts that calls itself Docker."""
        return self.path.kind == "elf" and self.version.startswith("Docker version")

    @property
    def wrapper(self) -> bool:
        return self.path.kind in ("script", "other", "empty")

    def to_json(self) -> dict[str, Any]:
        return {
            **self.path.to_json(),
            "found": list(self.origins),
            "version": self.version,
            "compose": self.compose,
            "role": "real client" if self.real else ("wrapper" if self.wrapper else "unknown"),
        }


@dataclass(frozen=True)
class Endpoint:
    """One address the daemon serves, and whether the user may open it."""

    address: str  # unix:///run/docker.sock, tcp://127.0.0.1:2375, fd://
    source: str  # listening socket of dockerd PID, dockerd -H, daemon.json, DOCKER_HOST, ...
    mode: str = ""
    owner: str = ""
    group: str = ""
    daemon_user: str = ""
    user_may_open: bool | None = None  # None: not a file (tcp, fd://) or unknown

    @property
    def socket_path(self) -> str | None:
        return self.address.removeprefix("unix://") if self.address.startswith("unix://") else None

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "source": self.source,
            "mode": self.mode,
            "owner": self.owner,
            "group": self.group,
            "daemon_user": self.daemon_user,
            "user_may_open": self.user_may_open,
        }


@dataclass(frozen=True)
class Daemon:
    pid: str
    user: str
    exe: str
    argv: tuple[str, ...]


@dataclass
class TargetFacts:
    user: str
    uid: str = ""
    user_groups: tuple[str, ...] = ()
    home: str = ""
    pam_path: tuple[
        str, ...
    ] = ()  # root side: PATH from /etc/pam/environment (PAM_USER/HOME filled)
    conf_path: tuple[str, ...] = ()  # root side: `getconf PATH` (what `command -p` searches)
    ssh_path: tuple[str, ...] = ()  # user side: PATH of the non-interactive SSH exec session
    login_path: tuple[str, ...] = ()  # user side: PATH of a login shell
    user_docker: str = ""  # user side: `command -v docker`
    user_docker_host: str = ""  # user side: $DOCKER_HOST
    clients: list[Client] = field(default_factory=list)
    daemons: list[Daemon] = field(default_factory=list)
    endpoints: list[Endpoint] = field(default_factory=list)
    resolved: dict[str, Resolved] = field(default_factory=dict)  # root side, by spelled path
    tools: dict[str, str] = field(default_factory=dict)  # root side: name -> path ("" absent)
    user_path_tools: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> paths
    sudo_lines: tuple[str, ...] = ()  # root side: `sudo -l -U USER`
    notes: list[str] = field(default_factory=list)  # what could not be parsed or read

    # ---- derived (root-side facts only) ------------------------------------------------
    def default_path_client(self) -> Client | None:
        """The real client ``command -p docker`` runs (first in ``getconf PATH``), if any."""
        for d in self.conf_path:
            for c in self.clients:
                if c.path.spelled == f"{d.rstrip('/')}/docker":
                    return c if c.real else None
        return None

    def real_clients(self) -> list[Client]:
        """One client per distinct file run (by dev:ino); the one beside dockerd first."""
        seen: dict[str, Client] = {}
        order = sorted(
            (c for c in self.clients if c.real),
            key=lambda c: (not any(o.startswith("beside:") for o in c.origins), c.path.spelled),
        )
        for c in order:
            seen.setdefault(c.path.ident, c)
        return list(seen.values())

    def real_client_dirs(self) -> list[str]:
        """Directories whose ``docker`` is a real client (for PATH tricks)."""
        idents = {c.path.ident for c in self.real_clients()}
        out: list[str] = []
        for c in self.clients:
            if c.path.ident in idents:
                d = c.path.spelled.rsplit("/", 1)[0] or "/"
                if d not in out:
                    out.append(d)
        return out

    def wrappers(self) -> list[Client]:
        return [c for c in self.clients if c.wrapper]

    def tool(self, name: str) -> str:
        return self.tools.get(name, "")

    def socket_paths(self) -> list[str]:
        out: list[str] = []
        for e in self.endpoints:
            p = e.socket_path
            if p and p not in out:
                out.append(p)
        return out

    def compose_available(self) -> bool:
        return any(c.compose for c in self.real_clients())

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "uid": self.uid,
            "groups": list(self.user_groups),
            "path": {
                "ssh_exec": list(self.ssh_path),
                "login_shell": list(self.login_path),
                "pam_environment": list(self.pam_path),
                "system_default": list(self.conf_path),
                "command_v_docker": self.user_docker,
                "DOCKER_HOST": self.user_docker_host,
            },
            "docker_clients": [c.to_json() for c in self.clients],
            "real_clients": [c.path.resolved for c in self.real_clients()],
            "real_client_dirs": self.real_client_dirs(),
            "daemons": [
                {"pid": d.pid, "user": d.user, "exe": d.exe, "argv": list(d.argv)}
                for d in self.daemons
            ],
            "endpoints": [e.to_json() for e in self.endpoints],
            "tools": dict(sorted(self.tools.items())),
            "sudo": list(self.sudo_lines),
            "notes": list(self.notes),
        }


def summary_lines(target: dict[str, Any]) -> list[str]:
    """A few lines on what discovery found, from a report's ``target`` (JSON) section."""
    if not target:
        return []
    path = target.get("path", {})
    out = [
        f"SSH exec PATH of {target.get('user', '?')}: {':'.join(path.get('ssh_exec', [])) or '?'}",
        f"real docker clients: {', '.join(target.get('real_clients', [])) or 'none'}",
    ]
    wrappers = [c["path"] for c in target.get("docker_clients", []) if c.get("role") == "wrapper"]
    if wrappers:
        out.append(f"docker wrappers: {', '.join(wrappers)}")
    for e in target.get("endpoints", []):
        who = {True: "user may open", False: "user may not open", None: ""}[e.get("user_may_open")]
        mode = f" {e.get('mode')} {e.get('owner')}:{e.get('group')}" if e.get("mode") else ""
        out.append(
            f"endpoint {e.get('address')}{mode} ({e.get('source')}){', ' + who if who else ''}"
        )
    out += [f"note: {n}" for n in target.get("notes", [])]
    return out
