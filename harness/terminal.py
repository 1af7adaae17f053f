"""Text from outside (device names, serials, properties, file names from a device) made safe
for a terminal: one helper for every line SwapLab prints.

Control characters (C0, DEL, C1: escape sequences that recolour, move the cursor, retitle
the window or talk to the terminal) and bidirectional overrides (text that reads
differently than it is) are shown escaped (ESC -> "\\x1b"), so the line still says what
the device sent, but the terminal only ever receives printable text.
"""

from __future__ import annotations

import re

__all__ = ["printable"]

_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
_UNSAFE_KEEP_NEWLINES = re.compile(f"[\x00-\x09\x0b-\x1f\x7f-\x9f{_BIDI}]")


def _escape(m: re.Match) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, *, keep_newlines: bool = False) -> str:
    """`text` (any object, str() of it) with every control character escaped; newlines
    kept only when asked (a message of several lines), never carriage returns."""
    pattern = _UNSAFE_KEEP_NEWLINES if keep_newlines else _UNSAFE
    return pattern.sub(_escape, str(text))
