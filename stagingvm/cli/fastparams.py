"""Plain conversion of command-line values, skipping Typer's Pydantic path where it adds nothing.

Why this exists: recent Typer versions coerce every non-boolean parameter through a Pydantic
``TypeAdapter``, and importing Pydantic costs 70-140 ms: more than the rest of
``pr-test-vm list`` on a quiet machine (issue #2 wants ``list`` of 100 VMs under 0.5 s).
stagingvm's parameters are plain ``str``, ``int``, ``float``, ``Path`` and ``list[str]``
without constraints, for which ``int(value)`` is all the validation there is. For those, this
module installs a converter of its own on each parameter (Typer builds its converter lazily
and keeps it in ``_runtime_param``, so one set beforehand is used as is). Parameters with
constraints (``min``/``max``, ``exists``, a custom parser, ...) keep Typer's own handling.

If Typer's internals differ (an older Typer on plain Click, or a newer one), ``install``
does nothing and Typer's own conversion applies: slower, never wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args, get_origin


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(value)


_PLAIN: dict[Any, Callable[[Any], Any]] = {
    str: str,
    int: int,
    float: float,
    Path: Path,
    bool: _flag,
}
# ParameterInfo attributes that must keep their defaults for a plain conversion to be right.
_UNCONSTRAINED = {
    "min": None,
    "max": None,
    "clamp": False,
    "parser": None,
    "exists": False,
    "resolve_path": False,
    "allow_dash": False,
    "path_type": None,
    "formats": None,
}


class _HelpNames:
    """What ``Command.get_help_option`` reads of a context."""

    def __init__(self, names: list[str]) -> None:
        self.help_option_names = names


def install(command: Any, help_option_names: list[str]) -> int:
    """Install plain converters on *command* and its subcommands; returns how many.

    The ``--help`` option of each command is made here (Click makes it on first use and
    caches it) so that it gets a plain converter too: its absent value is converted as well.
    """
    try:
        from typer._click.exceptions import BadParameter
        from typer._coercion import RuntimeParam
    except ImportError:
        return 0

    class PlainRuntimeParam(RuntimeParam):  # type: ignore[misc]
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            annotation: Any = self.annotation
            leaf = get_args(annotation)[0] if get_origin(annotation) is list else annotation
            convert = _PLAIN[leaf]
            try:
                if isinstance(value, list | tuple):
                    return [convert(item) for item in value]
                return convert(value)
            except (TypeError, ValueError):
                kind = getattr(annotation, "__name__", str(annotation))
                raise BadParameter(
                    f"{value!r} is not a valid {kind}.", ctx=ctx, param=param
                ) from None

    count = 0
    for param in _all_params(command, _HelpNames(help_option_names)):
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or getattr(param, "_runtime_param", "missing") is not None:
            continue
        if not _is_plain(descriptor):
            continue
        param._runtime_param = PlainRuntimeParam(
            parameter_info=descriptor.parameter_info, annotation=descriptor.annotation
        )
        count += 1
    return count


def _all_params(command: Any, names: _HelpNames) -> list[Any]:
    params = list(getattr(command, "params", []))
    get_help_option = getattr(command, "get_help_option", None)
    if get_help_option is not None:
        help_option = get_help_option(names)
        if help_option is not None:
            params.append(help_option)
    for sub in getattr(command, "commands", {}).values():
        params.extend(_all_params(sub, names))
    return params


def _is_plain(descriptor: Any) -> bool:
    annotation: Any = descriptor.annotation
    if get_origin(annotation) is list:
        args = get_args(annotation)
        if len(args) != 1:
            return False
        annotation = args[0]
    if annotation not in _PLAIN or getattr(descriptor, "file_annotation", None) is not None:
        return False
    info = descriptor.parameter_info
    return all(getattr(info, attr, default) == default for attr, default in _UNCONSTRAINED.items())
