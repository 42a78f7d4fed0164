"""Parse the discovery scripts' output into ``TargetFacts`` (pure functions).

The user's output is untrusted: it is read bounded (lines, fields, PATH entries), and a
line that does not fit its tag is dropped with a note, never guessed at.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from stagingvm.checks.target.facts import Client, Daemon, Endpoint, Resolved, TargetFacts

MAX_LINES = 4000
MAX_FIELD = 4096
MAX_PATH_ENTRIES = 64
_MODE_RE = re.compile(r"[0-7]{3,4}")
_INTERNAL = ("/run/docker/", "/var/run/docker/")


def _lines(output: str) -> list[list[str]]:
    rows = []
    for line in output.splitlines()[:MAX_LINES]:
        rows.append([f[:MAX_FIELD] for f in line.split("\t")])
    return rows


def split_path(value: str) -> tuple[str, ...]:
    """A PATH value as its entries (absolute ones only, at most 64, in order)."""
    out: list[str] = []
    for entry in value.split(":"):
        if entry.startswith("/") and entry not in out:
            out.append(entry)
        if len(out) >= MAX_PATH_ENTRIES:
            break
    return tuple(out)


def parse_user(output: str, facts: TargetFacts) -> None:
    """Fill in the user-side facts (shown only, never decisive)."""
    if "DISCOVER-USER-OK" not in output:
        facts.notes.append("the user's discovery script did not finish")
    seen: set[str] = set()
    for row in _lines(output):
        tag, rest = row[0], row[1:]
        value = rest[0] if rest else ""
        if tag in seen:  # the script prints each once: a repeat is noise, the first counts
            continue
        seen.add(tag)
        if tag == "SSHPATH":
            facts.ssh_path = split_path(value)
        elif tag == "LOGINPATH":
            facts.login_path = split_path(value)
        elif tag == "DOCKERHOST":
            facts.user_docker_host = value[:512]
        elif tag == "CMDV":
            facts.user_docker = value[:512]


def _pam_path(line: str, user: str, home: str) -> tuple[str, ...]:
    """``PATH DEFAULT="a:b"`` (pam_env.conf) with @{PAM_USER} and @{HOME} filled in."""
    match = re.search(r'DEFAULT="?([^"\s]*)"?', line)
    if not match:
        return ()
    value = match.group(1).replace("@{PAM_USER}", user).replace("@{HOME}", home)
    return split_path(value)


def _may_open(mode: str, owner: str, group: str, user: str, groups: tuple[str, ...]) -> bool | None:
    """May *user* connect to a unix socket with this mode (write permission decides)?"""
    if not _MODE_RE.fullmatch(mode):
        return None
    bits = int(mode, 8)
    if user == owner:
        return bool(bits & 0o200)
    if group in groups:
        return bool(bits & 0o020)
    return bool(bits & 0o002)


def _tcp_address(hexaddr: str) -> str:
    """``0100007F:0CEA`` (/proc/net/tcp) as ``tcp://127.0.0.1:3306``; IPv6 kept as hex."""
    host, _, port = hexaddr.partition(":")
    try:
        portnum = int(port, 16)
        if len(host) == 8:
            octets = [str(int(host[i : i + 2], 16)) for i in (6, 4, 2, 0)]
            return f"tcp://{'.'.join(octets)}:{portnum}"
        return f"tcp://[{host.lower()}]:{portnum}"
    except ValueError:
        return f"tcp://{hexaddr}"


def _daemon_json_hosts(blob: str) -> list[str]:
    try:
        data = json.loads(base64.b64decode(blob, validate=False).decode("utf-8", "replace"))
    except (binascii.Error, ValueError):
        return []
    hosts = data.get("hosts") if isinstance(data, dict) else None
    return [h for h in hosts if isinstance(h, str)][:16] if isinstance(hosts, list) else []


def _argv_hosts(argv: tuple[str, ...]) -> list[str]:
    out = []
    for i, arg in enumerate(argv):
        if arg in ("-H", "--host") and i + 1 < len(argv):
            out.append(argv[i + 1])
        elif arg.startswith(("--host=", "-H=")):
            out.append(arg.split("=", 1)[1])
    return out


def parse_root(output: str, facts: TargetFacts) -> None:
    """Fill in root's facts: clients, daemons, endpoints, sudo rules, tools."""
    if "DISCOVER-ROOT-OK" not in output:
        facts.notes.append("root's discovery script did not finish")
    origins: dict[str, list[str]] = {}
    versions: dict[str, tuple[str, str]] = {}
    sockets: dict[str, Endpoint] = {}
    declared: list[Endpoint] = []
    daemon_users: dict[str, str] = {}
    sudo: list[str] = []
    pam_lines: list[str] = []
    for row in _lines(output):
        tag, rest = row[0], row[1:]
        if tag == "USER" and len(rest) >= 4:
            facts.uid, facts.user_groups, facts.home = rest[1], tuple(rest[2].split()), rest[3]
        elif tag == "CONFPATH" and rest:
            facts.conf_path = tuple(d for d in rest[0].split(":") if d.startswith("/"))[:16]
        elif tag == "PAMPATH" and rest:
            pam_lines.append(rest[0])
        elif tag == "CLIENT" and len(rest) >= 2:
            origins.setdefault(rest[0], [])
            if rest[1] not in origins[rest[0]]:
                origins[rest[0]].append(rest[1])
        elif tag == "RES" and len(rest) >= 6:
            facts.resolved[rest[0]] = Resolved(*rest[:6])
        elif tag == "VERSION" and len(rest) >= 2:
            versions[rest[0]] = (rest[1], rest[2] if len(rest) > 2 else "")
            if not rest[1] and len(rest) > 3 and len(facts.notes) < 32:
                facts.notes.append(
                    f"root ran {rest[0]} --version: no answer (exit {rest[3][:8]}"
                    f"{', timed out' if rest[3] == '124' else ''})"
                )
        elif tag == "DAEMON" and len(rest) >= 3:
            argv = tuple(a for a in (rest[3:] if len(rest) > 3 else []) if a)
            facts.daemons.append(Daemon(rest[0], rest[1], rest[2], argv))
            daemon_users[rest[0]] = rest[1]
            for host in _argv_hosts(argv):
                declared.append(Endpoint(host, f"dockerd -H (pid {rest[0]})"))
        elif tag == "SOCK" and len(rest) >= 5:
            pid, path, mode, owner, group = rest[:5]
            if not path.startswith("/") or path.startswith(_INTERNAL):
                continue  # abstract, or the daemon's own (libnetwork, metrics, plugins)
            sockets.setdefault(
                path,
                Endpoint(
                    f"unix://{path}",
                    f"listening socket of dockerd (pid {pid})",
                    mode,
                    owner,
                    group,
                    daemon_users.get(pid, ""),
                ),
            )
        elif tag == "TCP" and len(rest) >= 3:
            declared.append(
                Endpoint(
                    _tcp_address(rest[2]), f"listening {rest[1]} socket of dockerd (pid {rest[0]})"
                )
            )
        elif tag == "DAEMONJSON" and len(rest) >= 3:
            for host in _daemon_json_hosts(rest[2]):
                declared.append(Endpoint(host, f"daemon.json hosts ({rest[1]})"))
        elif tag == "SDSOCK" and rest:
            facts.notes.append(f"systemd socket unit: {' '.join(rest[0].split())[:300]}")
        elif tag == "ENVDH" and rest:
            declared.append(Endpoint(rest[0].split("=", 1)[-1].strip().strip('"'), "DOCKER_HOST"))
        elif tag == "SUDOL" and rest:
            sudo.append(rest[0])
        elif tag == "TOOL" and len(rest) >= 1:
            facts.tools[rest[0]] = rest[1] if len(rest) > 1 else ""
        elif tag == "UPATH" and len(rest) >= 2:
            facts.user_path_tools[rest[0]] = (*facts.user_path_tools.get(rest[0], ()), rest[1])
    for line in pam_lines:
        facts.pam_path = facts.pam_path or _pam_path(line, facts.user, facts.home)
    for path, where in origins.items():
        version, compose = versions.get(path, ("", ""))
        res = facts.resolved.get(path, Resolved(path))
        facts.clients.append(Client(res, tuple(where), version, compose))
    for ep in sockets.values():
        may = _may_open(ep.mode, ep.owner, ep.group, facts.user, facts.user_groups)
        facts.endpoints.append(
            Endpoint(ep.address, ep.source, ep.mode, ep.owner, ep.group, ep.daemon_user, may)
        )
    known = {e.address for e in facts.endpoints}
    for ep in declared:
        if ep.address and ep.address not in known:
            known.add(ep.address)
            facts.endpoints.append(ep)
    facts.sudo_lines = tuple(sudo)
