"""CSV cells that are safe to open in a spreadsheet (OWASP "CSV injection").

A cell starting with = + - @ (or a tab / carriage return that a spreadsheet strips first) is run as a
formula when a CSV is opened in Excel or LibreOffice, so ``=cmd|' /C calc'!A0`` in a tenant name or a
quarantined row would execute on an operator's machine. Every CSV the platform or the pipeline hands to
people (the audit export, quarantine files) passes its cells through ``escape_cell``: such cells get a
leading single quote, which spreadsheets show as text. Negative numbers are quoted too, by design: the
files are for reading, not for arithmetic.
"""

from __future__ import annotations

FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value
