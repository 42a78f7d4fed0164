"""The hardened design from one spec: validation, the helper, the rules, the policy."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from stagingvm.checks import hardened, hardpolicy
from stagingvm.errors import InvalidInputError
from stagingvm.policy import parse_policy

LAB_JSON = Path(hardened.__file__).parent / "designfiles" / "hardened.json"


def lab_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(LAB_JSON.read_text())
    return data


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("images", ["alpine:3.20 --privileged"]),  # options smuggled into an image
        ("images", ["*"]),
        ("images", ["-v"]),
        ("containers", ["ollama,ALL"]),  # a sudoers list separator
        ("containers", ["a b"]),
        ("containers", ["ollama", "ollama"]),
        ("audit", [["journalctl", "*"]]),
        ("audit", [["/usr/bin/journalctl", "-n", "5"]]),  # a path, not a name
        ("audit", [["iptables", "-L", "a:b"]]),
        ("audit", [[]]),
        ("user", "Root user"),
        ("logTail", True),
        ("run", {"memory": "1t", "pidsLimit": 64, "tmpfsSize": "16m"}),
        ("run", {"memory": "256m", "pidsLimit": 0, "tmpfsSize": "16m"}),
    ],
)
def test_a_spec_that_could_open_a_hole_is_refused(key: str, value: object) -> None:
    data = lab_data()
    data[key] = value
    with pytest.raises(InvalidInputError, match="hardened spec"):
        hardened.parse_spec(data)


def test_unknown_or_missing_keys_are_refused() -> None:
    data = lab_data()
    data["exec"] = True
    with pytest.raises(InvalidInputError, match="keys must be exactly"):
        hardened.parse_spec(data)
    del data["exec"], data["audit"]
    with pytest.raises(InvalidInputError, match="keys must be exactly"):
        hardened.parse_spec(data)


def test_the_helper_parses_and_carries_the_lists() -> None:
    spec = hardened.lab_spec()
    text = hardened.helper(spec, hardened.DEBIAN)
    assert re.findall(r"@[A-Za-z]+@", hardened.template()) and not re.findall(r"@[A-Za-z]+@", text)
    assert "SERVICES=('stagingvm-svc')" in text and "IMAGES=('stagingvm/probe:latest')" in text
    assert "DOCKER=/usr/bin/docker\n" in text and text.startswith("#!/bin/bash\n")
    assert "--pids-limit 64 --memory 256m" in text and "--tail 500" in text
    done = subprocess.run(["bash", "-n"], input=text.encode(), capture_output=True, check=False)
    assert done.returncode == 0, done.stderr


def _run_helper(tmp_path: Path, *args: str) -> tuple[int, list[str]]:
    """The Debian helper with a fake docker that records its argv, one word a line."""
    fake = tmp_path / "docker"
    fake.write_text('#!/bin/bash\nprintf "%s\\n" "$@" > "$(dirname "$0")/argv"\n')
    fake.chmod(0o755)
    paths = hardened.Paths("/bin/bash", str(fake), "/usr/bin:/bin", "/x", {})
    script = tmp_path / "ai-docker"
    script.write_text(hardened.helper(hardened.lab_spec(), paths))
    script.chmod(0o755)
    (tmp_path / "argv").unlink(missing_ok=True)
    done = subprocess.run([str(script), *args], capture_output=True, check=False)
    recorded = tmp_path / "argv"
    return done.returncode, recorded.read_text().splitlines() if recorded.exists() else []


def test_the_helper_builds_every_docker_argv_itself(tmp_path: Path) -> None:
    code, argv = _run_helper(tmp_path, "run", "stagingvm/probe:latest", "sh", "-c", "id; echo $x")
    assert code == 0
    image = argv.index("stagingvm/probe:latest")
    assert argv[: image - 1] == [
        "run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp:size=16m",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--user", "65534:65534",
        "--pids-limit", "64", "--memory", "256m", "--label", "stagingvm.agent=1",
    ]  # fmt: skip
    assert argv[image - 1] == "--" and argv[image + 1 :] == ["sh", "-c", "id; echo $x"]
    assert _run_helper(tmp_path, "restart", "stagingvm-svc") == (
        0, ["restart", "--", "stagingvm-svc"],
    )  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [
        ("run", "stagingvm/probe:latest --privileged", "sh"),
        ("run", "alpine", "sh"),
        ("inspect", "stagingvm-othersvc"),
        ("inspect", "stagingvm-svc stagingvm-othersvc"),
        ("logs", "stagingvm-svc", "--since=0"),
        ("ps", "-a"),
        ("exec", "stagingvm-svc", "sh"),
        (),
    ],
)
def test_the_helper_refuses_what_is_not_listed(tmp_path: Path, args: tuple[str, ...]) -> None:
    assert _run_helper(tmp_path, *args) == (2, [])  # docker never ran


def test_commands_are_exact_and_an_argumentless_audit_allows_no_arguments() -> None:
    data = lab_data()
    data["audit"] = [["fail2ban-client", "status"], ["ss"]]
    cmds = hardened.commands(hardened.parse_spec(data), hardened.DEBIAN)
    assert cmds[-2:] == ["/usr/bin/fail2ban-client status", '/usr/bin/ss ""']
    assert [c for c in cmds if "*" in c] == [
        "/usr/local/sbin/ai-docker run stagingvm/probe\\:latest *"
    ]


def test_an_audit_tool_without_a_debian_path_is_an_error() -> None:
    data = lab_data()
    data["audit"] = [["nft", "list", "ruleset"]]
    with pytest.raises(InvalidInputError, match="no known path"):
        hardened.commands(hardened.parse_spec(data), hardened.DEBIAN)
    nixos = hardened.commands(hardened.parse_spec(data), hardened.NIXOS_LAB)
    assert nixos[-1] == "/run/current-system/sw/bin/nft list ruleset"


def test_the_sudoers_files_pass_visudo_where_it_is_installed(tmp_path: Path) -> None:
    import shutil

    visudo = shutil.which("visudo") or "/usr/sbin/visudo"
    if not Path(visudo).exists():
        pytest.skip("visudo is not installed")
    spec = hardened.lab_spec()
    for name, text in (
        ("deb", hardened.sudoers_debian(spec)),
        ("nix", hardened.sudoers_nixos(spec)),
    ):
        path = tmp_path / name
        path.write_text(text)
        done = subprocess.run([visudo, "-c", "-f", str(path)], capture_output=True, check=False)
        assert done.returncode == 0, (name, done.stdout, done.stderr)


def test_policy_allows_exactly_the_rules_and_keeps_every_deny_promise() -> None:
    spec = hardened.lab_spec()
    text = hardpolicy.policy_toml(spec, hardened.NIXOS_LAB)
    policy = parse_policy(text)
    helper = "/run/current-system/sw/bin/ai-docker"
    assert list(policy.sudo.allowed) == [
        c.replace("\\:", ":") for c in hardened.commands(spec, hardened.NIXOS_LAB)
    ]
    assert policy.sudo.runas == ("root",) and policy.host.helper == helper
    allow = {p.id: p.commands for p in policy.promises if p.kind == "allow"}
    assert allow == {
        "list-containers": (f"sudo -n {helper} ps",),
        "inspect-service": (f"sudo -n {helper} inspect {{service}}",),
        "logs-service": (f"sudo -n {helper} logs {{service}}",),
        "restart-service": (f"sudo -n {helper} restart {{service}}",),
        "run-container": (f"sudo -n {helper} run {{image}} echo {{mark}}",),
    }
    builtin = tomllib.loads(
        resources.files("stagingvm.policy.builtin").joinpath("ai-worker.toml").read_text()
    )
    deny = [p for p in builtin["promise"] if p["kind"] == "deny"]
    assert [p.id for p in policy.promises if p.kind == "deny"] == [p["id"] for p in deny]
    assert policy.user.groups_forbidden == tuple(builtin["user"]["groups_forbidden"])


def test_policy_refuses_a_spec_naming_the_batterys_victims() -> None:
    data = lab_data()
    data["containers"] = ["stagingvm-victim"]
    with pytest.raises(InvalidInputError, match="victims"):
        hardpolicy.policy_toml(hardened.parse_spec(data), hardened.NIXOS_LAB)
    data["containers"] = []
    with pytest.raises(InvalidInputError, match="at least one container"):
        hardpolicy.policy_toml(hardened.parse_spec(data), hardened.NIXOS_LAB)


def test_cli_policy_from_module(cli: Any, tmp_path: Path) -> None:
    done = cli(["policy", "from-module", str(LAB_JSON), "--layout", "debian"])
    assert done.exit_code == 0, done.output
    policy = parse_policy(done.stdout)
    assert policy.host.helper == "/usr/local/sbin/ai-docker"
    bad = tmp_path / "bad.json"
    bad.write_text('{"user": "ai-worker"}')
    done = cli(["policy", "from-module", str(bad)])
    assert done.exit_code == 2 and "keys must be exactly" in done.stderr and not done.stdout


def test_lab_policy_per_layout() -> None:
    assert hardpolicy.lab_policy("nixos").host.helper == "/run/current-system/sw/bin/ai-docker"
    assert hardpolicy.lab_policy("debian").host.helper == "/usr/local/sbin/ai-docker"
    with pytest.raises(InvalidInputError, match="unknown layout"):
        hardpolicy.lab_policy("arch")
