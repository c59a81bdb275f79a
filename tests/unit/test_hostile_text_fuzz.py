"""Hostile text, property-based: whatever a tracker's text holds, what `bridge.text` lets reach a terminal
or a log line holds no control, escape sequence or character that reorders or hides text; the visible
text around the sequences is all kept; and JSON output parses back to exactly the text it was given.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.text import TerminalSafeFilter, json_terminal_safe, terminal_markup, terminal_safe

FAST = settings(max_examples=int(os.environ.get("HOSTILE_TEXT_EXAMPLES", "200")), deadline=None)
"""Well under a second each; set HOSTILE_TEXT_EXAMPLES for a deeper search."""

UNSAFE = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
    r"\ufff9-\ufffb\U000e0000-\U000e007f]"
)
"""What no terminal output may hold: C0 but tab and newline, DEL, C1, and the invisible characters that
reorder or hide text."""
LINE_BREAKS = re.compile(r"[\t\n\r\v\f\x85\u2028\u2029]")

SEQUENCES = [
    "\x1b[2J", "\x1b[1;31m", "\x1b[?25l", "\x1b[38;5;196m", "\x9b2J", "\x9b0m",  # CSI, 7- and 8-bit
    "\x1b]0;pwned\x07", "\x1b]2;pwned\x1b\\", "\x9d0;pwned\x9c",  # OSC: window titles
    "\x1b]8;;http://evil.example/\x1b\\", "\x1b]8;;\x07",  # OSC 8: a hidden link's two halves
    "\x1bP1$r\x1b\\", "\x90q\x9c", "\x1b_apc\x1b\\", "\x1b^pm\x07", "\x1bXsos\x1b\\",  # DCS, APC, PM, SOS
    "\x1bc", "\x1b7", "\x1b8", "\x1b(0", "\x1b#8",  # reset, cursor save and restore, charsets
    "\x00", "\x07", "\x08", "\x7f", "\x85", "\x9b", "\x1b",  # lone controls (ESC and CSI last: see below)
    "\u202e", "\u202d", "\u202a", "\u202b", "\u202c", "\u2066", "\u2067", "\u2068", "\u2069",  # bidi
    "\u200e", "\u200f", "\u061c", "\u200b", "\u2060", "\ufeff", "\U000e0041", "\U000e007f",  # marks, tags
]  # fmt: skip
"""Sequences and characters a terminal acts on or hides; none shows, so cleaning keeps none of it."""
COMPLETE = [s for s in SEQUENCES if s not in ("\x1b", "\x9b", "\x85")]
"""A lone ESC or CSI starts a sequence with whatever follows it, so those go only at the very end; NEL is
a line break, which a one-line field shows as a space."""

visible = st.text(st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp", "Co", "Cn")), max_size=12)
"""Text a terminal just prints: letters, digits, marks, symbols, punctuation, spaces, rich markup."""
anything = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60) | st.lists(
    st.sampled_from(SEQUENCES) | visible, max_size=12
).map("".join)


@FAST
@given(text=anything, single_line=st.booleans())
def test_nothing_unsafe_survives_cleaning(text: str, single_line: bool) -> None:
    cleaned = terminal_safe(text, single_line=single_line)
    assert not UNSAFE.findall(cleaned), repr(cleaned)
    if single_line:
        assert not LINE_BREAKS.search(cleaned), "a one-line field stays on its line"
    else:
        assert "\r" not in cleaned
    assert terminal_safe(cleaned, single_line=single_line) == cleaned, "cleaning twice changes nothing"
    assert not UNSAFE.findall(terminal_markup(text))


@FAST
@given(
    parts=st.lists(st.tuples(visible, st.sampled_from(COMPLETE)), max_size=8),
    tail=visible,
    last=st.sampled_from(["", "\x1b", "\x9b"]),
)
def test_the_visible_text_around_the_sequences_is_all_kept(
    parts: list[tuple[str, str]], tail: str, last: str
) -> None:
    text = "".join(shown + hidden for shown, hidden in parts) + tail + last
    expected = "".join(shown for shown, _ in parts) + tail
    assert terminal_safe(text) == expected
    assert terminal_safe(text, single_line=False) == expected


@FAST
@given(
    value=st.recursive(
        anything | st.integers() | st.none(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(anything, inner, max_size=4),
        max_leaves=12,
    )
)
def test_json_output_escapes_every_unsafe_character_and_parses_to_the_same_value(value: object) -> None:
    for indent in (None, 2):
        document = json_terminal_safe(json.dumps(value, ensure_ascii=False, indent=indent))
        assert not UNSAFE.findall(document), repr(document)
        assert json.loads(document) == value


@FAST
@given(message=anything, args=st.lists(anything, max_size=3))
def test_a_log_line_holds_nothing_unsafe_and_an_argument_keeps_to_its_line(
    message: str, args: list[str]
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(TerminalSafeFilter())
    logger = logging.getLogger("bridge.test_hostile_text_fuzz")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("item %s: %s, %r", message, " ".join(args), tuple(args))
    finally:
        logger.removeHandler(handler)
    logged = stream.getvalue()
    assert not UNSAFE.findall(logged), repr(logged)
    assert logged.count("\n") == 1, "arguments (tracker text) never start a log line of their own"
