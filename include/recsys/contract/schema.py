"""The data contract between a tenant, the pipeline and the platform.

One definition of what a valid item, user, interaction and Kafka interaction message is, used by the
seed generator, the upload stage's quarantine, the ingestion worker and the GX suites' tests. Problems
are reported as short reasons ("price must be > 0, got -3.5") so quarantined rows and dead-lettered
messages say why they were set aside.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

# The generator's own taxonomy (include/recsys/datagen.py). Tenants bring theirs: any category within
# MAX_CATEGORY_LENGTH is valid, and a catalog may have none.
CATEGORIES: tuple[str, ...] = (
    "smartphones",
    "laptops",
    "tablets",
    "audio",
    "cameras",
    "gaming",
    "wearables",
    "smart_home",
    "tv",
    "accessories",
)
INTERACTION_TYPES: tuple[str, ...] = ("view", "click", "add_to_cart", "purchase")

ITEM_COLUMNS: tuple[str, ...] = ("item_id", "title", "category", "price", "image_url")
USER_COLUMNS: tuple[str, ...] = ("user_id", "country", "signup_date")
INTERACTION_COLUMNS: tuple[str, ...] = ("event_id", "user_id", "item_id", "interaction_type", "timestamp")
# A Kafka interaction message is an interaction plus who it belongs to and which upload it came from.
MESSAGE_FIELDS: tuple[str, ...] = ("tenant", "source", *INTERACTION_COLUMNS)

MAX_ID_LENGTH = 128
MAX_CATEGORY_LENGTH = 128
MAX_TITLE_LENGTH = 1000
MAX_URL_LENGTH = 2048
# items.price is numeric(12, 2): anything else would fail the whole catalog's insert in the database.
MIN_PRICE = 0.01
MAX_PRICE = 9_999_999_999.99
MAX_MESSAGE_BYTES = 16 * 1024
# Postgres refuses UTC offsets of 16 hours or more; such a timestamp would fail the whole ingest batch.
MAX_UTC_OFFSET = timedelta(hours=16)


class ContractError(ValueError):
    """Input that cannot be read as the contract's shape at all (as opposed to a bad row)."""


def require_columns(columns: Iterable[str], expected: Iterable[str], *, what: str) -> None:
    """Fail with the missing columns named; extra columns are allowed (and ignored by callers)."""
    present = set(columns)
    missing = [c for c in expected if c not in present]
    if missing:
        # Bounded: a header that is one 50 MB line must not become a 50 MB error message in the logs.
        found = [str(c)[:40] for c in sorted(present, key=str)[:20]]
        more = f" (+{len(present) - 20} more)" if len(present) > 20 else ""
        raise ContractError(
            f"{what} must have columns {', '.join(expected)}; missing: {', '.join(missing)}"
            f" (found: {', '.join(found) or 'none'}{more})"
        )


def parse_timestamp(value: Any) -> datetime:
    """ISO-8601 with a timezone; naive times are ambiguous across tenants, so they are rejected."""
    if not isinstance(value, str):
        raise ValueError(f"timestamp must be an ISO-8601 string, got {type(value).__name__}")
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"timestamp must be ISO-8601, got {value[:40]!r}") from None
    if ts.tzinfo is None:
        raise ValueError(f"timestamp must carry a timezone, got {value[:40]!r}")
    # Python accepts offsets and instants that Postgres does not; let through, one such value would make
    # the ingestion worker's batch insert fail on every re-delivery.
    if abs(ts.utcoffset()) >= MAX_UTC_OFFSET:
        raise ValueError(f"timestamp's UTC offset must be under 16 hours, got {value[:40]!r}")
    try:
        ts.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"timestamp must fall within years 1-9999 in UTC, got {value[:40]!r}") from None
    return ts


def reason_kind(reason: str) -> str:
    """The rule a reason names, without the offending value: reasons read "<rule>, got <value>", so rows
    rejected for the same rule count together however their values differ."""
    return reason.split(", got ", 1)[0]


def nul_problem(row: Mapping[str, Any], fields: Iterable[str]) -> str | None:
    """Postgres text cannot hold NUL: a row carrying one would fail its whole batch in the database."""
    # A plain loop: any() over a generator cost the ingestion worker ~10% of its decoding time.
    for f in fields:
        value = row.get(f)
        if isinstance(value, str) and "\x00" in value:
            return "fields must not contain NUL characters"
    return None


def _id_problem(name: str, value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return f"{name} must be a non-empty string"
    if len(value) > MAX_ID_LENGTH:
        return f"{name} longer than {MAX_ID_LENGTH} characters"
    return None


def checked_message(message: Any, *, nul_possible: bool = True) -> tuple[datetime | None, str | None]:
    """(its timestamp, None) for a decoded interaction message that keeps the contract, else (None, why).

    ``nul_possible=False`` skips the NUL scan, for a caller that knows none can be there (a JSON text holds a
    NUL only as the escape \\u0000): the scan was a quarter of the ingestion worker's checks."""
    if not isinstance(message, Mapping):
        return None, f"message must be a JSON object, got {type(message).__name__}"
    missing = [f for f in MESSAGE_FIELDS if f not in message]
    if missing:
        return None, f"missing fields: {', '.join(missing)}"
    for field in ("tenant", "source", "event_id", "user_id", "item_id"):
        problem = _id_problem(field, message[field])
        if problem:
            return None, problem
    if message["interaction_type"] not in INTERACTION_TYPES:
        return (
            None,
            f"interaction_type must be one of {', '.join(INTERACTION_TYPES)}, got {str(message['interaction_type'])[:40]!r}",
        )
    try:
        ts = parse_timestamp(message["timestamp"])
    except ValueError as exc:
        return None, str(exc)
    problem = nul_problem(message, MESSAGE_FIELDS) if nul_possible else None
    return (None, problem) if problem else (ts, None)


def item_problem(row: Mapping[str, Any]) -> str | None:
    """Why one catalog row breaks the contract, or None. Only item_id is required: title, category, price and
    image_url are checked when given (an empty cell is an absent value), and a category is the tenant's own."""
    problem = _id_problem("item_id", row.get("item_id"))
    if problem:
        return problem
    for name, limit in (("title", MAX_TITLE_LENGTH), ("category", MAX_CATEGORY_LENGTH), ("image_url", MAX_URL_LENGTH)):
        value = row.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str) or not value.strip():
            return f"{name} must be text that is not blank when given, got {str(value)[:40]!r}"
        if len(value) > limit:
            return f"{name} longer than {limit} characters"
    price = row.get("price")
    if price is not None and price != "":
        try:
            price_value = float(price)
        except (TypeError, ValueError):
            return f"price must be a number, got {str(price)[:40]!r}"
        if not math.isfinite(price_value) or price_value <= 0:
            return f"price must be > 0, got {price_value}"
        if not MIN_PRICE <= round(price_value, 2) <= MAX_PRICE:
            return f"price must be between {MIN_PRICE} and {MAX_PRICE} (two decimals), got {price_value}"
    return nul_problem(row, ITEM_COLUMNS)


def interaction_problem(
    row: Mapping[str, Any],
    *,
    item_ids: set[str] | frozenset[str],
    window: tuple[datetime, datetime] | None = None,
) -> str | None:
    """Why one interaction row breaks the contract (including references and the time window), or None.

    ``window`` is the run's data interval [start, end); bring-your-own-data runs pass None because a
    real tenant's history need not fall inside the run's interval.
    """
    for field in ("event_id", "user_id", "item_id"):
        problem = _id_problem(field, row.get(field))
        if problem:
            return problem
    if row["item_id"] not in item_ids:
        return f"unknown item_id, got {row['item_id'][:MAX_ID_LENGTH]!r}"
    if row.get("interaction_type") not in INTERACTION_TYPES:
        return f"interaction_type must be one of {', '.join(INTERACTION_TYPES)}, got {str(row.get('interaction_type'))[:40]!r}"
    try:
        ts = parse_timestamp(row.get("timestamp"))
    except ValueError as exc:
        return str(exc)
    if window is not None and not (window[0] <= ts < window[1]):
        return f"timestamp outside the run's interval [{window[0].isoformat()}, {window[1].isoformat()}), got {row['timestamp']!r}"
    return nul_problem(row, INTERACTION_COLUMNS)
