"""Making text the guest printed safe for each place it is shown.

What a probe, a promise command or the guest's console printed is untrusted: a pull request
decides it. Each sink gets its own treatment:

- Markdown (a PR comment): inside a code span whose backtick fence is longer than any run of
  backticks in the text, so nothing in it is markup; newlines and ``|`` (table cells) made
  harmless; cut at a length limit with a note saying so. Text of the project's own that sits
  outside code is HTML-escaped (``md_text``).
- XML 1.0 (JUnit): characters the standard forbids (C0 controls but tab/LF/CR, surrogates,
  U+FFFE/U+FFFF) become ``\\xNN``-style escapes, so the file always parses.
- The terminal: C0/C1 controls and ESC become visible (``\\x1b``), so no escape sequence is
  interpreted; Rich markup is escaped by the caller that prints through Rich (``term``).
"""

from __future__ import annotations

import html
import re

MD_LIMIT = 300

_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROLS_NO_NL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_TICKS = re.compile("`+")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def xml_text(text: str) -> str:
    """*text* with every character XML 1.0 forbids shown as an escape."""
    return _XML_FORBIDDEN.sub(_visible, text)


def term(text: str, *, keep_newlines: bool = False) -> str:
    """*text* with C0/C1 control characters (ESC included) shown, not interpreted."""
    pattern = _CONTROLS if keep_newlines else _CONTROLS_NO_NL
    out = pattern.sub(_visible, text)
    return out if keep_newlines else out.replace("\n", "\\n")


def cut(text: str, limit: int) -> str:
    """*text* cut at *limit* characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return text[:limit] + f" [... {len(text) - limit} more characters cut]"


def md_code(text: str, limit: int = MD_LIMIT) -> str:
    """*text* as one inline Markdown code span (safe in a table cell), cut at *limit*."""
    if not text:
        return ""
    body = text if len(text) <= limit else text[:limit]
    note = "" if len(text) <= limit else f" (cut: {len(text) - limit} more characters)"
    body = term(body).replace("|", "\\|")
    longest = max((len(m) for m in _TICKS.findall(body)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if body.startswith("`") or body.endswith("`") or body.startswith(" ") else ""
    return f"{fence}{pad}{body}{pad}{fence}{note}"


def md_block(lines: list[str], limit: int = 4000) -> list[str]:
    """*lines* as a fenced Markdown code block whose fence no line can close."""
    text = "\n".join(term(line) for line in lines)
    note = []
    if len(text) > limit:
        note = [f"(cut: {len(text) - limit} more characters)"]
        text = text[:limit]
    longest = max((len(m) for m in _TICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, *text.splitlines(), fence, *note]


def md_text(text: str, limit: int = MD_LIMIT) -> str:
    """Text of the project's own outside code (titles, descriptions): HTML-escaped, one line."""
    return html.escape(term(cut(text, limit)), quote=False).replace("|", "\\|")
