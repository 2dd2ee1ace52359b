"""Strings that come from users and checkpoints (names, paths, machine names, titles), made safe to put
on a page: shown as the text they are, never run or rendered as markup."""

from __future__ import annotations

import html
import re

__all__ = ["markdown_text", "markdown_code", "markdown_table"]

# everything Markdown (CommonMark, as nbconvert and GitHub render it) gives a meaning to, except parentheses:
# they only mean something after a "]" (a link), and "]" is escaped; "1)" opening a line is a list, see below
_MARKDOWN = re.compile(r"([\\`*_{}\[\]#+\-.!|~<>:])")
_LIST_MARKER = re.compile(r"^(\d{1,9})\)")


def markdown_text(value) -> str:
    """``value`` as Markdown text: HTML-escaped, then every mark that could start markup backslash-escaped, so
    ``[x](javascript:…)`` or ``![t](http://host/x.png)`` stay those characters, not a link or a remote image.
    Line breaks become spaces (a value is one line of a table or a sentence)."""
    flat = " ".join(str(value).split())
    return _LIST_MARKER.sub(r"\1\\)", _MARKDOWN.sub(r"\\\1", html.escape(flat, quote=False)))


def markdown_code(value) -> str:
    """``value`` as a Markdown code span: shown verbatim (a code span renders no link, image or HTML), its
    fence longer than any run of backticks inside it. For commands and paths, which read better as code."""
    flat = " ".join(str(value).split())
    fence = "`" * (max((len(run) for run in re.findall(r"`+", flat)), default=0) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def markdown_table(frame, index: bool = True) -> str:
    """A DataFrame as a Markdown table: floats to 2 decimals, – where a value is missing (NaN or None), a "|"
    inside a cell escaped (−log D(x | c_T) would otherwise split its cell in two)."""
    frame = frame.reset_index() if index else frame

    def cell(v) -> str:
        if v is None or (isinstance(v, float) and v != v):
            return "–"
        return f"{v:.2f}" if isinstance(v, float) else str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(str(c)) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)
