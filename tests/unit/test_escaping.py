"""Guest text in each sink: Markdown code spans, XML 1.0, the terminal."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from stagingvm.escaping import cut, md_block, md_code, md_text, term, xml_text

HOSTILE = (
    "</details><img src=x onerror=alert(1)> [link](http://x) ``` `a` ``x`` | \x1b[31mred\x07\x00"
)


def test_md_code_fence_is_longer_than_any_backtick_run() -> None:
    span = md_code(HOSTILE)
    fence = span[: len(span) - len(span.lstrip("`"))]
    assert len(fence) == 4  # the text has a run of 3
    inner = span[len(fence) : span.rindex(fence)]
    assert "````" not in inner
    assert "\x1b" not in span and "\\x1b" in span
    assert "\\|" in span and " | " not in inner.replace("\\|", "")


def test_md_code_cut_with_a_note() -> None:
    span = md_code("a" * 1000, limit=50)
    assert "a" * 51 not in span
    assert "(cut: 950 more characters)" in span


def test_md_text_is_html_escaped() -> None:
    out = md_text("<b>x</b> | y")
    assert "<b>" not in out and "&lt;b&gt;" in out and "\\|" in out


def test_md_block_fence_cannot_be_closed_by_a_line() -> None:
    block = md_block(["```", "````", "ok"])
    assert block[0] == "`````" and block[-1] == "`````"


def test_xml_text_parses_back() -> None:
    root = ET.Element("e", message=xml_text(HOSTILE + "\ufffe\ud800"))
    root.text = xml_text(HOSTILE)
    parsed = ET.fromstring(ET.tostring(root, "unicode"))
    assert "\\x1b" in (parsed.text or "") and "\\x00" in parsed.get("message", "")


def test_term_shows_controls() -> None:
    assert term("a\x1b[2Jb\x9bc\nd") == "a\\x1b[2Jb\\x9bc\\nd"
    assert term("a\nb", keep_newlines=True) == "a\nb"
    assert cut("abcdef", 3) == "abc [... 3 more characters cut]"
