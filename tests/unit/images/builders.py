"""Quick real builders for the cache and CLI tests, registered via ``register_builder``."""

from __future__ import annotations

import time

from stagingvm.images import register_builder
from stagingvm.images.buildenv import BuildContext

CALLS: list[str] = []


def counting_builder(ctx: BuildContext) -> None:
    """Writes a disk file whose content is the recipe hash, and counts its calls."""
    CALLS.append(ctx.recipe.name)
    ctx.run(["sh", "-c", "echo building $0", ctx.recipe.name])
    if ctx.recipe.option("sleep"):
        time.sleep(float(ctx.recipe.option("sleep")))
    (ctx.workdir / "disk.qcow2").write_text(ctx.recipe.content_hash())
    (ctx.workdir / "rootfs.tar.zst").write_bytes(b"")


def failing_builder(ctx: BuildContext) -> None:
    (ctx.workdir / "disk.qcow2").write_text("half an image")
    ctx.run(["sh", "-c", "echo 'step 1 ok'; echo 'something broke' >&2; exit 3"])


def interrupted_builder(ctx: BuildContext) -> None:
    (ctx.workdir / "disk.qcow2").write_text("half an image")
    raise KeyboardInterrupt


register_builder("unit-counter", counting_builder, replace=True)
register_builder("unit-failing", failing_builder, replace=True)
register_builder("unit-interrupted", interrupted_builder, replace=True)
register_builder("unit-missing-tool", counting_builder, tools=("stagingvm-no-such-tool",),
                 replace=True)  # fmt: skip
