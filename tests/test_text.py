"""Markdown text: a string put on a page (a checkpoint's metadata, a command, a table cell) renders as the
text it is, never as a link, an image, a script or markup (issue 21)."""

import html

import mistune
import pandas as pd
import pytest

from drawviz.text import markdown_table, markdown_text

ATTACKS = [
    "[x](javascript:alert(1))",
    "![t](http://evil.example/x.png)",
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "`code` **bold** _it_ # head",
]


@pytest.mark.parametrize("value", ATTACKS)
def test_a_string_on_a_page_renders_as_the_text_it_is(value):
    rendered = mistune.html(f"Model: {markdown_text(value)} (T = 4).")
    assert "<a " not in rendered and "<img" not in rendered and "<script" not in rendered
    assert "<strong>" not in rendered and "<em>" not in rendered and "<code>" not in rendered
    assert html.unescape(value) in html.unescape(rendered)  # the reader sees exactly the string


@pytest.mark.parametrize("value", ["1) a list", "1. a list", "- a list", "# a heading"])
def test_a_string_opening_a_line_starts_no_block(value):
    rendered = mistune.html(markdown_text(value))
    assert rendered.startswith("<p>") and value in html.unescape(rendered)


def test_parentheses_stay_unescaped_where_they_cannot_make_a_link():
    assert markdown_text("AMD EPYC (AVX2), 1 thread(s)") == "AMD EPYC (AVX2), 1 thread(s)"


def test_a_bar_inside_a_table_cell_keeps_the_cell_whole():
    frame = pd.DataFrame({"effect": ["final error −log D(x | c_T) change"], "value | nats": [2.0]})
    rendered = mistune.create_markdown(plugins=["table"])(markdown_table(frame, index=False))
    assert rendered.count("<td>") == 2 and "−log D(x | c_T) change</td>" in rendered
    assert "<th>value | nats</th>" in rendered
