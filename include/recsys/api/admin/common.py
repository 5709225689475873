"""What the admin routes share: the audit actor, input patterns and date rendering."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

ACTOR = "admin"
SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# Postgres text cannot hold NUL, so it is refused here as a 422 rather than failing in the driver.
NO_NUL = r"^[^\x00]*$"
Source = Annotated[str | None, Field(default=None, max_length=200, pattern=NO_NUL)]


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
