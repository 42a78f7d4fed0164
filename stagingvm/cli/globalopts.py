"""Global options accepted after the verb too: ``pr-test-vm list --uri test:///default``.

virsh, vagrant and kubectl users put ``--uri``/``--debug`` wherever they like. Click only
takes a group's options before the sub-command, so before parsing, ``hoist`` moves the global
options it finds after the verb to the front. It reads the command line as Click will: a
verb's own option of the same name wins (it is left alone), an option's value is skipped,
``--`` ends the options, and for a verb that passes everything after its first argument on
(``ssh NAME -- CMD``, ``lab exec -- CMD``) nothing after that argument is touched.
"""

from __future__ import annotations

from typing import Any


def _options(command: Any) -> dict[str, Any]:
    """Every option string of *command* -> its parameter."""
    found: dict[str, Any] = {}
    for param in getattr(command, "params", []):
        for opt in [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]:
            if opt.startswith("-"):
                found[opt] = param
    return found


def _takes_value(param: Any) -> bool:
    return not (getattr(param, "is_flag", False) or getattr(param, "count", False))


def hoist(group: Any, ctx: Any, args: list[str]) -> list[str]:
    """*args* with the group's own options that follow the verb moved before it."""
    globals_ = {
        opt: param
        for opt, param in _options(group).items()
        if not getattr(param, "is_eager", False)  # --help/--version keep their place
    }
    # The words before the verb are the group's own: skip them (with their values).
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "--":
        opt = args[i].split("=", 1)[0]
        param = globals_.get(opt)
        i += 2 if param is not None and _takes_value(param) and "=" not in args[i] else 1
    if i >= len(args) or args[i] == "--":
        return args
    head, verb, tail = args[:i], args[i], args[i + 1 :]
    command = group.get_command(ctx, verb)
    if command is None:
        return args
    moved: list[str] = []
    kept: list[str] = []
    j = 0
    while j < len(tail):
        word = tail[j]
        if word == "--":
            kept.extend(tail[j:])
            break
        if not word.startswith("-") or word == "-":
            sub = getattr(command, "commands", None)
            if sub is not None and word in sub:  # a sub-command (lab up, image list)
                command = sub[word]
            elif not getattr(command, "context_settings", {}).get("allow_interspersed_args", True):
                kept.extend(tail[j:])  # the rest belongs to the remote command
                break
            kept.append(word)
            j += 1
            continue
        opt = word.split("=", 1)[0]
        own = _options(command).get(opt)
        if own is not None:
            width = 2 if _takes_value(own) and "=" not in word else 1
            kept.extend(tail[j : j + width])
            j += width
            continue
        param = globals_.get(opt)
        if param is None:
            kept.append(word)  # unknown: Click reports it
            j += 1
            continue
        width = 2 if _takes_value(param) and "=" not in word else 1
        moved.extend(tail[j : j + width])
        j += width
    return [*head, *moved, verb, *kept]
