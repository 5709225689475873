"""Path parameters of the Journey UI, validated before anything is read: a run id, a tenant, and a file of a
run's Data Docs site. Nothing may leave the run's prefix: no ``..`` or ``.`` segment, however it was encoded
(the server has decoded ``%2e%2e`` once already; a second encoding is decoded here until stable)."""

from __future__ import annotations

import re
from urllib.parse import unquote

from plugins.journey import TENANT_PATTERN

# Airflow's default allowed_run_id_pattern, plus the length Airflow's run_id column holds.
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.~:+-]{1,250}$")
# What GX writes into a Data Docs site: suite, run and batch names with dots, dashes, colons, plus signs.
DOCS_SEGMENT = re.compile(r"^[A-Za-z0-9_.:+=@~-]{1,255}$")
MAX_DOCS_DEPTH = 8


class InvalidPath(ValueError):
    """A path parameter that is not what it must be; the message says what was expected and what was found."""


def _decoded(value: str) -> str:
    for _ in range(3):
        decoded = unquote(value)
        if decoded == value:
            return value
        value = decoded
    return value


def run_id(value: str) -> str:
    if not RUN_ID_PATTERN.fullmatch(value) or set(value) <= {"."}:
        raise InvalidPath(f"run id must match {RUN_ID_PATTERN.pattern} and not be dots only; found {value[:80]!r}")
    return value


def tenant(value: str) -> str:
    if not re.fullmatch(TENANT_PATTERN, value):
        raise InvalidPath(f"tenant must match {TENANT_PATTERN}; found {value[:80]!r}")
    return value


def docs_file(value: str) -> str:
    """A relative path inside a Data Docs site; an empty path is its index.html."""
    path = _decoded(value or "index.html")
    segments = path.split("/")
    if len(segments) > MAX_DOCS_DEPTH or any(s in ("", ".", "..") or not DOCS_SEGMENT.fullmatch(s) for s in segments):
        raise InvalidPath(
            f"Data Docs path must be up to {MAX_DOCS_DEPTH} segments of {DOCS_SEGMENT.pattern}, none '.' or '..';"
            f" found {path[:120]!r}"
        )
    return path
