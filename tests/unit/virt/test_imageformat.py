"""Crafted images of each kind that must be refused before QEMU or qemu-img opens them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from stagingvm.errors import InvalidInputError
from stagingvm.virt import imageformat, qemuimg

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")


def _img(tmp: Path, name: str, *args: str) -> Path:
    subprocess.run(
        ["qemu-img", "create", *args, str(tmp / name), "1M"],
        check=True,
        capture_output=True,
        cwd=tmp,
    )
    return tmp / name


def test_plain_qcow2_and_raw_are_accepted(tmp_path: Path) -> None:
    q = _img(tmp_path, "a.qcow2", "-f", "qcow2")
    r = _img(tmp_path, "a.raw", "-f", "raw")
    v2 = _img(tmp_path, "v2.qcow2", "-f", "qcow2", "-o", "compat=0.10")
    assert imageformat.detect(q) == "qcow2"
    assert imageformat.detect(v2) == "qcow2"
    assert imageformat.detect(r) == "raw"
    assert qemuimg.inspect(q).format == "qcow2"
    assert qemuimg.inspect(r).format == "raw"


def test_backing_file_is_refused(tmp_path: Path) -> None:
    _img(tmp_path, "base.qcow2", "-f", "qcow2")
    b = _img(tmp_path, "over.qcow2", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2")
    with pytest.raises(InvalidInputError, match="backing file"):
        qemuimg.inspect(b)


def test_external_data_file_is_refused(tmp_path: Path) -> None:
    _img(tmp_path, "data.raw", "-f", "raw")
    d = _img(tmp_path, "d.qcow2", "-f", "qcow2", "-o", "data_file=data.raw")
    with pytest.raises(InvalidInputError, match="data-file"):
        qemuimg.inspect(d)


@pytest.mark.parametrize(
    ("fmt", "opts"),
    [
        ("vmdk", ()),
        ("vmdk", ("-o", "subformat=monolithicFlat")),
        ("vdi", ()),
        ("vpc", ()),
        ("vhdx", ()),
        ("qed", ()),
        ("parallels", ()),
    ],
)
def test_other_formats_are_refused(tmp_path: Path, fmt: str, opts: tuple[str, ...]) -> None:
    image = _img(tmp_path, f"x.{fmt}", "-f", fmt, *opts)
    with pytest.raises(InvalidInputError, match=f"is {fmt}: only qcow2 and raw"):
        qemuimg.inspect(image)


def test_protocols_and_non_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="plain local file"):
        qemuimg.inspect(Path('json:{"file.filename":"/etc/passwd"}'))
    with pytest.raises(InvalidInputError, match="plain local file"):
        qemuimg.inspect(Path("nbd:localhost:10809"))
    with pytest.raises(InvalidInputError, match="not a regular file"):
        qemuimg.inspect(Path("/dev/zero"))
    with pytest.raises(InvalidInputError, match="not a regular file"):
        qemuimg.inspect(tmp_path)


def test_import_writes_a_self_contained_qcow2(tmp_path: Path) -> None:
    raw = _img(tmp_path, "a.raw", "-f", "raw")
    out = tmp_path / "out.qcow2"
    qemuimg.convert_to_qcow2(raw, "raw", out)
    facts = qemuimg.inspect(out)
    assert facts.format == "qcow2" and facts.backing_file is None
