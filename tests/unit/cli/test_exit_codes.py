"""Each verb's documented exit codes (``stagingvm.cli.exitcodes``) are the ones it returns.

Every row marked ``UNIT`` has a case here that reaches that code for real: the CLI on
libvirt's test driver, with bad input, a missing VM, an unreachable libvirt, a missing tool.
A row naming a test (e2e, or a library test for a lock another command holds) must name one
that exists and mentions the code. A case without a row, or a row without a case, fails.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from stagingvm.cli import exitcodes
from tests.unit.cli.conftest import Driver

# The policy lab's hardened spec (the same file the lab's hardened recipes are built from).
_LAB_SPEC = Path(__file__).parents[3] / "stagingvm" / "checks" / "designfiles" / "hardened.json"

ROOT = Path(__file__).resolve().parents[3]
Case = Callable[[Driver], Result]
NO_LIBVIRT = "qemu+unix:///system?socket=/nonexistent/stagingvm-no-libvirt-sock"


def _no_libvirt(td: Driver, *args: str) -> Result:
    return td.cli(["--uri", NO_LIBVIRT, "--data-dir", str(td.data_dir), *args], env=td.env)


def _vm(td: Driver, name: str = "vm1") -> Driver:
    td.add_base("base1")
    started = td("start", name, "--base", "base1", "--no-wait")
    assert started.exit_code == 0, started.output
    return td


def _no_tools(td: Driver, *args: str) -> Result:
    """*args* with an empty PATH: nix, qemu-img and the rest are nowhere to be found."""
    return td.with_env({"PATH": str(td.data_dir / "empty-path")}, *args)


def _kvm_asked(td: Driver) -> Result:
    td.add_base("base1")
    return td.with_env({"STAGINGVM_ACCEL": "kvm"}, "start", "vm1", "--base", "base1", "--no-wait")


def _configuration_nix(td: Driver) -> str:
    path = td.data_dir.parent / "configuration.nix"
    path.write_text("{ ... }: { }\n")
    return str(path)


def _host_route() -> str | None:
    """A network the host routes to (not the default route), as CIDR, from /proc/net/route;
    not one through stagingvm's own default bridge (setup skips those: its own network, up
    already, e.g. inside the lab's namespace)."""
    import ipaddress

    from stagingvm.settings import Settings

    own = Settings().network.bridge
    for line in Path("/proc/net/route").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[0] == own:
            continue
        dest, mask = (int(fields[i], 16).to_bytes(4, "little") for i in (1, 7))
        if mask != bytes(4):
            net = ipaddress.IPv4Network(
                (ipaddress.IPv4Address(dest), str(ipaddress.IPv4Address(mask)))
            )
            return str(net)
    return None


def _subnet_overlap(td: Driver) -> Result:
    route = _host_route()
    if route is None:
        pytest.skip("this host routes no network but the default one")
    return td.with_env({"STAGINGVM_NETWORK_SUBNET": route}, "setup")


def _cached_image(td: Driver) -> Driver:
    entry = td.data_dir / "images" / "tiny-0123456789ab"
    entry.mkdir(parents=True)
    (entry / "disk.qcow2").write_bytes(b"QFI\xfb")
    return td


BAD_CONFIG = {"STAGINGVM_MEMORY": "lots"}


def _bad_config(td: Driver, *args: str) -> Result:
    return td.with_env(BAD_CONFIG, *args)


CASES: dict[tuple[str, int], Case] = {
    ("build", 2): lambda td: td("build", "--image", "x.qcow2", "--recipe", "tiny", "--name", "b"),
    ("build", 3): lambda td: td("build", "--image", "/nonexistent/x.qcow2", "--name", "b"),
    ("build", 4): lambda td: _no_libvirt(td, "build", "--image", __file__, "--name", "b"),
    ("build", 12): lambda td: _no_tools(td, "build", _configuration_nix(td)),
    ("start", 0): lambda td: _vm(td)("status", "vm1"),
    ("start", 2): lambda td: td("start", "vm1", "--memory", "1"),
    ("start", 3): lambda td: td("start", "vm1", "--base", "nosuch", "--no-wait"),
    ("start", 4): lambda td: _no_libvirt(td, "start", "vm1", "--no-wait"),
    ("start", 6): lambda td: _vm(td)("start", "vm1", "--base", "base1", "--no-wait"),
    ("start", 12): lambda td: _kvm_asked(td),
    ("stop", 0): lambda td: _vm(td)("stop", "vm1", "--force"),
    ("stop", 2): lambda td: td("stop", "vm1", "--timeout", "-1"),
    ("stop", 3): lambda td: td("stop", "nosuch"),
    ("stop", 4): lambda td: _no_libvirt(td, "stop", "vm1"),
    ("destroy", 0): lambda td: _vm(td)("destroy", "vm1"),
    ("destroy", 2): lambda td: td("destroy", "Bad_Name"),
    ("destroy", 3): lambda td: td("destroy", "nosuch"),
    ("destroy", 4): lambda td: _no_libvirt(td, "destroy", "vm1"),
    ("rebuild", 0): lambda td: _vm(td)("rebuild", "vm1", "--no-wait"),
    ("rebuild", 2): lambda td: td("rebuild", "../etc"),
    ("rebuild", 3): lambda td: td("rebuild", "nosuch", "--no-wait"),
    ("rebuild", 4): lambda td: _no_libvirt(td, "rebuild", "vm1"),
    ("snapshot", 0): lambda td: _vm(td)("snapshot", "vm1"),
    ("snapshot", 2): lambda td: td("snapshot", "vm1", "--name", "no/slash"),
    ("snapshot", 3): lambda td: td("snapshot", "nosuch"),
    ("snapshot", 4): lambda td: _no_libvirt(td, "snapshot", "vm1"),
    ("snapshot", 6): lambda td: (lambda d: (d("stop", "vm1", "--force"), d("snapshot", "vm1")))(
        _vm(td)
    )[1],
    ("revert", 2): lambda td: td("revert", "vm1", "no/slash"),
    ("revert", 3): lambda td: td("revert", "nosuch", "--no-wait"),
    ("revert", 4): lambda td: _no_libvirt(td, "revert", "vm1"),
    ("ssh", 2): lambda td: td("ssh", "bad user@vm1"),
    ("ssh", 3): lambda td: td("ssh", "nosuch", "--", "true"),
    ("ssh", 4): lambda td: _no_libvirt(td, "ssh", "vm1", "--", "true"),
    ("console", 0): lambda td: _console_log(td),
    ("console", 2): lambda td: td("console", "-bad"),
    ("console", 3): lambda td: td("console", "nosuch", "--log"),
    ("console", 4): lambda td: _no_libvirt(td, "console", "vm1"),
    ("ssh-config", 0): lambda td: _vm(td)("ssh-config"),
    ("ssh-config", 2): lambda td: td("ssh-config", "--user", "bad user"),
    ("ssh-config", 3): lambda td: td("ssh-config", "nosuch"),
    ("ssh-config", 4): lambda td: _no_libvirt(td, "ssh-config"),
    ("scp", 2): lambda td: td("scp", "a", "b"),
    ("scp", 3): lambda td: td("scp", __file__, "nosuch:/tmp/x"),
    ("scp", 4): lambda td: _no_libvirt(td, "scp", __file__, "vm1:/tmp/x"),
    ("list", 0): lambda td: td("list"),
    ("list", 2): lambda td: _bad_config(td, "list"),
    ("list", 4): lambda td: _no_libvirt(td, "list"),
    ("status", 0): lambda td: _vm(td)("status", "vm1", "--json"),
    ("status", 2): lambda td: td("status", "x" * 300),
    ("status", 3): lambda td: td("status", "nosuch"),
    ("status", 4): lambda td: _no_libvirt(td, "status", "vm1"),
    ("config", 0): lambda td: td("config", "--json"),
    ("config", 2): lambda td: _bad_config(td, "config"),
    ("check", 2): lambda td: td("check", "vm1", "--policy", "builtin:nosuch"),
    ("check", 3): lambda td: td("check", "nosuch"),
    ("check", 4): lambda td: _no_libvirt(td, "check", "vm1"),
    ("setup", 0): lambda td: td("setup", "--json"),
    ("setup", 2): lambda td: _bad_config(td, "setup"),
    ("setup", 4): lambda td: _no_libvirt(td, "setup"),
    ("setup", 6): _subnet_overlap,
    ("test", 2): lambda td: td("test", "--image", __file__, "--recipe", "tiny"),
    ("test", 3): lambda td: td("test", "--image", "/nonexistent/x.qcow2"),
    ("test", 11): lambda td: _no_libvirt(td, "test", "--image", __file__),
    ("gc", 0): lambda td: td("gc"),
    ("gc", 2): lambda td: td("gc", "--older-than", "soon"),
    ("gc", 4): lambda td: _no_libvirt(td, "gc"),
    ("help", 0): lambda td: td("help", "cli"),
    ("help", 2): lambda td: td("help", "--nosuch"),
    ("help", 3): lambda td: td("help", "nosuch"),
    ("lab up", 2): lambda td: td("lab", "up", "--namespace", "bad/ns"),
    ("lab down", 2): lambda td: td("lab", "down", "--namespace", "bad/ns"),
    ("lab status", 0): lambda td: td("lab", "status", "--namespace", "stagingvm-nosuch", "--json"),
    ("lab status", 2): lambda td: td("lab", "status", "--namespace", "bad/ns"),
    ("lab exec", 2): lambda td: td("lab", "exec"),
    ("lab exec", 4): lambda td: td("lab", "exec", "--namespace", "stagingvm-nosuch", "--", "true"),
    ("image build", 2): lambda td: _bad_config(td, "image", "build", "tiny"),
    ("image build", 3): lambda td: td("image", "build", "nosuch"),
    ("policy from-module", 0): lambda td: td("policy", "from-module", str(_LAB_SPEC)),
    ("policy from-module", 2): lambda td: td("policy", "from-module", "/nonexistent/spec.json"),
    ("image list", 0): lambda td: td("image", "list", "--json"),
    ("image list", 2): lambda td: _bad_config(td, "image", "list"),
    ("image rm", 0): lambda td: _cached_image(td)("image", "rm", "tiny"),
    ("image rm", 2): lambda td: _bad_config(td, "image", "rm", "tiny"),
    ("image rm", 3): lambda td: td("image", "rm", "nosuch"),
}


def _console_log(td: Driver) -> Result:
    log = td.data_dir / "vms" / "vm1" / "console.log"
    log.parent.mkdir(parents=True)
    log.write_bytes(b"boot\n")
    return td("console", "vm1", "--log")


def _rows(reach: Callable[[str], bool]) -> list[tuple[str, int]]:
    return [
        (verb, c.code)
        for verb in exitcodes.VERBS
        for c in exitcodes.codes_of(verb)
        if reach(c.reach)
    ]


def test_every_unit_row_has_a_case_and_every_case_a_row() -> None:
    rows = set(_rows(lambda r: r == exitcodes.UNIT))
    assert rows - set(CASES) == set(), "rows without a case"
    assert set(CASES) - rows == set(), "cases without a row"


def test_every_verb_has_a_table_and_every_table_a_verb() -> None:
    from tests.unit.cli.test_basic import LEAVES

    assert {" ".join(p) for p in LEAVES} == set(exitcodes.VERBS)


@pytest.mark.parametrize(("verb", "code"), sorted(CASES), ids=lambda v: str(v))
def test_the_code_is_reached(td: Driver, verb: str, code: int) -> None:
    result = CASES[(verb, code)](td)
    assert result.exit_code == code, (verb, code, result.output)
    if code not in (0, exitcodes.SSH_STATUS):
        assert any(line.startswith("error: ") for line in result.stderr.splitlines()), result.stderr


def _test_source(node_id: str) -> str:
    path, _, name = node_id.partition("::")
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return ast.get_source_segment((ROOT / path).read_text(encoding="utf-8"), node) or ""
    raise AssertionError(f"{node_id} does not exist")


@pytest.mark.parametrize(
    ("verb", "code", "node_id"),
    [
        (verb, c.code, c.reach)
        for verb in exitcodes.VERBS
        for c in exitcodes.codes_of(verb)
        if "::" in c.reach
    ],
)
def test_a_named_test_exists_and_names_the_code(verb: str, code: int, node_id: str) -> None:
    source = _test_source(node_id)
    if code == exitcodes.SSH_STATUS:
        return  # a status of the guest's or the job's own: any number the test picked
    # the code itself, or the exception that carries it
    names = {str(code), *(cls.__name__ for cls in _classes_with(code))}
    assert any(re.search(rf"\b{re.escape(n)}\b", source) for n in names), (verb, code, node_id)


def _classes_with(code: int) -> list[type]:
    from stagingvm import errors

    return [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and getattr(cls, "exit_code", None) == code
    ]


def test_help_and_docs_show_each_verbs_codes(cli: Callable[..., Result]) -> None:
    docs = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for verb in exitcodes.VERBS:
        help_text = " ".join(cli([*verb.split(), "--help"]).stdout.split())
        section = docs.split(f"## pr-test-vm {verb}\n", 1)[1].split("\n## ", 1)[0]
        section = " ".join(section.split())
        for c in exitcodes.codes_of(verb):
            line = f"{exitcodes.label(c.code)} {c.when}"
            assert line in help_text, (verb, line)
            assert line in section, (verb, line)
