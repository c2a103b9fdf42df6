"""Text headed for a spreadsheet cell (CSV exports), made safe to open.

A cell that starts with = + - @ (or a tab or carriage return) is run as a
formula by Excel, LibreOffice and Google Sheets: a member name or memo typed
as `=HYPERLINK(...)` would become a live link or worse in the coordinator's
spreadsheet (CSV injection).  Every export passes people's text through here.
"""

from __future__ import annotations

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(text: str) -> str:
    """`text` as a cell a spreadsheet shows as text: a formula start gets an apostrophe."""
    return "'" + text if text[:1] in _FORMULA_STARTS else text
