"""Tracker text made safe for a terminal and a log line.

Anyone who can edit an item writes its title, its field values and its status names; printed raw, an
escape sequence in them clears the operator's screen, retitles the window, plants a hidden hyperlink
(OSC 8) or moves the cursor to overwrite earlier lines. `terminal_safe` takes out every escape sequence
and control character; `terminal_markup` also escapes rich markup, for text printed through rich.
JSON output needs neither (JSON escapes control characters itself); HTML pages escape text with
`html_escape`, which drops controls and the characters that reorder or hide text as well.
"""

from __future__ import annotations

import logging
import re

_STRING_SEQUENCE = re.compile(
    # OSC, DCS, SOS, PM and APC (7-bit ESC ] P X ^ _, or their 8-bit forms) up to BEL or ST; an OSC 8
    # hyperlink is two of these around its visible text, which stays.
    r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)",
)
_CONTROL_SEQUENCE = re.compile(r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]")
"""CSI: cursor moves, screen clears, colours."""
_OTHER_ESCAPE = re.compile(r"\x1b[\x20-\x2f]*[\x30-\x7e]")
"""Every other escape sequence (ESC c resets the terminal, ESC 7/8 save and restore the cursor)."""
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""C0 (but tab and newline), DEL and C1 controls; a lone ESC left over is among them."""
_FORMAT_CHARACTERS = (
    "\u061c\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000e0000-\U000e007f"
)
"""Invisible characters that reorder or hide what a terminal shows: the bidirectional marks, embeddings,
overrides and isolates (U+202E prints `txt.exe` as `exe.txt`), zero-width space, word joiner and
invisible operators, the deprecated format controls, the byte-order mark, interlinear annotations and
the tag characters (U+E0000..U+E007F, which spell hidden ASCII). The zero-width joiners (U+200C, U+200D)
stay: scripts and emoji need them and they move nothing."""
_FORMAT = re.compile(f"[{_FORMAT_CHARACTERS}]")
_FORMATTER = logging.Formatter()
_LINE_BREAK = re.compile(r"\r\n|[\t\n\r\v\f\x85\u2028\u2029]")


def plural(count: int, word: str, many: str | None = None) -> str:
    """`1 open task`, `2 open tasks`: `many` where adding an s is wrong (`1 entry`, `2 entries`)."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def terminal_safe(text: str, *, single_line: bool = True) -> str:
    """`text` without escape sequences or control characters, fit to print on a terminal or in a log.

    In a single-line field (a title, a key, a status name) every line break and tab becomes a space, so
    a title cannot start a line of its own; with `single_line=False` (a message of several lines) line
    breaks stay as newlines, a carriage return that is not part of one is dropped."""
    text = _LINE_BREAK.sub(" ", text) if single_line else text.replace("\r\n", "\n")
    text = _STRING_SEQUENCE.sub("", text)
    text = _CONTROL_SEQUENCE.sub("", text)
    return _FORMAT.sub("", _CONTROL.sub("", _OTHER_ESCAPE.sub("", text)))


_JSON_UNESCAPED_CONTROL = re.compile(f"[\x7f-\x9f{_FORMAT_CHARACTERS}]")


def _json_escape(found: re.Match[str]) -> str:
    code = ord(found.group())
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    high, low = divmod(code - 0x10000, 0x400)  # a UTF-16 surrogate pair, as JSON spells such a character
    return f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}"


def json_terminal_safe(document: str) -> str:
    """A JSON document (dumped with `ensure_ascii=False`) with DEL, the C1 controls and the invisible
    format characters written as `\\u` escapes: JSON escapes only C0 itself, an 8-bit CSI (U+009B) is
    one to some terminals, and a right-to-left override reorders the rest of the line. It parses to the
    same value; outside strings a JSON document holds no such character."""
    return _JSON_UNESCAPED_CONTROL.sub(_json_escape, document)


_HTML_UNSAFE = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_FORMAT_CHARACTERS}]")
"""Controls (but tab and line breaks), which HTML and SVG text may not hold, and what reorders or hides
text: a right-to-left override in a title would reorder the rest of its line on a page too."""


def html_escape(text: str, quote: bool = True) -> str:
    """`html.escape(text, quote)` of `text` without controls or characters that reorder or hide text."""
    from html import escape

    return escape(_HTML_UNSAFE.sub("", text), quote)


def terminal_markup(text: str) -> str:
    """`terminal_safe(text)` escaped for rich markup, so `[bold]x[/bold]` in a title prints as written."""
    from rich.markup import escape

    return escape(terminal_safe(text))


class TerminalSafeFilter(logging.Filter):
    """A logging filter for text log handlers: the message and its string arguments lose escape
    sequences and control characters (a tracker's title or error text is often among the arguments)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # String arguments are fields (a title, a status): one line each, so none can forge a log line.
        if isinstance(record.args, tuple):
            record.args = tuple(terminal_safe(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: terminal_safe(v) if isinstance(v, str) else v for k, v in record.args.items()}
        message = record.getMessage()
        cleaned = terminal_safe(message, single_line=False)
        if cleaned != message:  # an exception or another object among the arguments carried some
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = terminal_safe(_FORMATTER.formatException(record.exc_info), single_line=False)
        return True


def install_terminal_safety(logger: logging.Logger | None = None) -> None:
    """Clean the records of every handler of `logger` (the root logger by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, TerminalSafeFilter) for f in handler.filters):
            handler.addFilter(TerminalSafeFilter())
