"""``help TOPIC``: the documentation pages, from the installed package.

The wheel ships docs/*.md as ``stagingvm/_docs`` (pyproject's force-include); a source checkout
(``pip install -e .``) reads ``docs/`` beside the package. Hints name ``pr-test-vm help
TOPIC`` rather than a repository path, so they work wherever stagingvm is installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stagingvm.cli.state import cli_state
from stagingvm.errors import NotFoundError

PACKAGE = Path(__file__).resolve().parents[1]


def docs_dir() -> Path | None:
    """Where the pages are: the installed copy first, then a source checkout's docs/."""
    for candidate in (PACKAGE / "_docs", PACKAGE.parent / "docs"):
        if (candidate / "cli.md").is_file():
            return candidate
    return None


def topics() -> list[str]:
    directory = docs_dir()
    return [] if directory is None else sorted(p.stem for p in directory.glob("*.md"))


def _complete_topic(incomplete: str) -> list[str]:
    return [t for t in topics() if t.startswith(incomplete)]


def help_topic(
    ctx: typer.Context,
    topic: Annotated[
        str | None,
        typer.Argument(
            metavar="[TOPIC]",
            help="A page such as configuration, ssh or cli; none: list them.",
            show_default=False,
            autocompletion=_complete_topic,
        ),
    ] = None,
) -> None:
    """Print one of stagingvm's documentation pages (Markdown) on stdout.

    Example:

    \b
      pr-test-vm help configuration | less
    """
    state = cli_state(ctx)
    names = topics()
    if topic is None:
        state.out.data("\n".join(names) if names else "(no pages installed)")
        return
    directory = docs_dir()
    if directory is None or topic not in names:
        raise NotFoundError(
            f"no help topic {topic!r}",
            hint="topics: " + ", ".join(names) if names else "no pages are installed",
        )
    state.out.data((directory / f"{topic}.md").read_text(encoding="utf-8"))


def register(app: typer.Typer) -> None:
    app.command("help")(help_topic)
