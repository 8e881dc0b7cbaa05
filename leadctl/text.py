"""Outside text made safe to show on a terminal or in a log: control, bidi and invisible
characters escaped."""

from __future__ import annotations

import re
from typing import Any

# C0 (ESC starts every terminal escape sequence; CR rewrites the line), DEL, C1 (0x9b is a
# one-byte CSI), line and paragraph separators, the bidi embeddings, overrides and isolates
# (Trojan Source), and lone surrogates (unprintable in UTF-8). The bidi marks U+200E, U+200F
# and U+061C stay: they cannot reorder strong text, and right-to-left names use them.
# Then the invisible characters no name needs, which hide a word break from the eye
# ("Nu\u00adnez" looks like "Nunez"): soft hyphen, combining grapheme joiner, Hangul
# fillers, zero width space, word joiner and the invisible operators, BOM, the shorthand and
# musical format controls, and the tag characters (which can spell hidden ASCII). Variation
# selectors stay: emoji and Han names need them.
_UNSAFE = (
    "\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
    "\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180e\u200b\u2060-\u2065\u206a-\u206f"
    "\u3164\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0000-\U000e007f"
)
# The joiners U+200C/U+200D stay between letters of a script (Indic, Persian, emoji sequences
# need them), but not beside ASCII or at either end, where they join nothing.
_JOINER = "(?<![^\t\n\r\x20-\x7e])[\u200c\u200d]|[\u200c\u200d](?![^\t\n\r\x20-\x7e])"
# Patterns as text: `re` compiles each on first use (about 0.5 ms apiece at every start-up
# otherwise, and most commands never print an unsafe character).
_ONE_LINE = f"[{_UNSAFE}]|{_JOINER}"
_MULTI_LINE = f"(?![\\t\\n])[{_UNSAFE}]|{_JOINER}"
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# Of those, the ones Python counts as printable (letters and marks that draw nothing), which
# `str.isprintable` alone would let through.
_PRINTABLE_HIDDEN = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u3164\uffa0")


def _notation(match: re.Match[str]) -> str:
    ch = match.group()
    code = ord(ch)
    if ch in _NAMED:
        return _NAMED[ch]
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else f"\\U{code:08x}"
    )


def visible(text: Any, *, multiline: bool = False) -> str:
    """Outside text made safe to print: control, bidi and invisible characters become `\\x1b`,
    `\\u202e`, `\\u00ad`.

    The one place that marks text as untrusted: every print path of the CLI's `Output` and
    the server's log lines go through it.
    With `multiline`, newline and tab stay (a renderer's own layout); everything else that a
    terminal would act on, including CR, is shown escaped.
    """
    text = text if isinstance(text, str) else str(text)
    if _plainly_safe(text):  # the usual case
        return text
    return re.sub(_MULTI_LINE if multiline else _ONE_LINE, _notation, text)


def has_unsafe(text: str) -> bool:
    """Whether `visible(text)` would change anything."""
    return not _plainly_safe(text) and re.search(_ONE_LINE, text) is not None


def _plainly_safe(text: str) -> bool:
    """No control, format, bidi, surrogate or drawn-blank character: nothing to escape."""
    return text.isprintable() and (text.isascii() or _PRINTABLE_HIDDEN.isdisjoint(text))
