"""Text from the data made safe to print or write: control characters are shown as escapes.

File names, metadata fields, captions and error messages come from the scanned data. Printed raw,
a terminal escape in one of them could retitle the terminal (OSC 0), plant a link (OSC 8), move the
cursor or erase lines; a bidi override could make a name read differently from what it is. Every
renderer (console tables and messages, report.md, report.html, the GitHub step summary and
annotations) passes its text through `safe_text`, which shows each such character as a visible
escape (`\\x1b`, `\\u202e`) instead. Below every renderer; imports nothing of the project.
"""

from __future__ import annotations

import re

# C0 controls and DEL, C1 controls, the bidi embeddings, overrides, isolates and marks, and the
# Unicode line and paragraph separators; the layout pattern spares newline (\n) and tab (\t).
_OTHERS = "\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
_ANY = re.compile(f"[\x00-\x1f{_OTHERS}]")
_BUT_LAYOUT = re.compile(f"[\x00-\x08\x0b-\x1f{_OTHERS}]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(text: object, keep_layout: bool = False) -> str:
    """`text` with every control character escaped; `keep_layout` keeps newlines and tabs (for a
    whole document the renderer laid out itself)."""
    return (_BUT_LAYOUT if keep_layout else _ANY).sub(_escape, str(text))
