"""API keys and the admin token.

Keys are 32 random bytes, so a fast hash is enough: SHA-256 hex is what the database stores, and the
key itself is shown once at creation. Lookups go through a short-lived in-process cache so the
recommendation path makes no database round-trip per request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

KEY_PREFIX = "rk_"
# Enough of the key to recognise it in a listing, far too little to guess the rest.
DISPLAY_PREFIX_CHARS = len(KEY_PREFIX) + 8


@dataclass(frozen=True)
class KeyOwner:
    key_id: str
    tenant_id: str
    tenant_slug: str
    prefix: str
    # The key's rate-limit plan: its own, or else its tenant's (include/sql/0005_rate_plans.sql).
    plan: str
    rate_limit: int
    rate_window_s: float

    def owns(self, tenant_ref: str) -> bool:
        """Whether a tenant id or slug from a request names this key's tenant."""
        return tenant_ref in (self.tenant_id, self.tenant_slug)


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_PREFIX_CHARS]


def bearer_token(authorization: str | None) -> str | None:
    """The token of an "Authorization: Bearer <token>" header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def bearer_matches(authorization: str | None, *, token: str) -> bool:
    """Whether the header carries exactly ``token`` (the admin token, or the scrape token of /metrics)."""
    presented = bearer_token(authorization)
    # compare_digest on bytes: constant time regardless of where the first difference is.
    return presented is not None and hmac.compare_digest(presented.encode("utf-8"), token.encode("utf-8"))


class KeyCache:
    """key hash -> owner, with a TTL so a revocation made through another API process takes effect within
    ``ttl_s`` (the process that revokes a key forgets it at once).

    Unknown hashes are cached too (for less time), so a client hammering with a bad key costs one
    query per ``negative_ttl_s`` rather than one per request.
    """

    def __init__(
        self,
        lookup: Callable[[str], KeyOwner | None],
        *,
        ttl_s: float = 30.0,
        negative_ttl_s: float = 5.0,
        max_entries: int = 10_000,
    ) -> None:
        self._lookup = lookup
        self._ttl_s = ttl_s
        self._negative_ttl_s = negative_ttl_s
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, KeyOwner | None]] = {}
        self._lock = threading.Lock()

    def cached(self, key: str) -> tuple[bool, KeyOwner | None]:
        """(hit, owner) without touching the database; a hit with owner None is a known-bad key."""
        entry = self._entries.get(hash_key(key))
        if entry is not None and entry[0] > time.monotonic():
            return True, entry[1]
        return False, None

    def forget(self, key_hash: str) -> None:
        """Drop a key's cached owner, so a revocation takes effect in this process at once."""
        with self._lock:
            self._entries.pop(key_hash, None)

    def forget_tenant(self, tenant_id: str) -> None:
        """Drop every cached key of a tenant, so a plan change takes effect in this process at once."""
        with self._lock:
            self._entries = {
                digest: entry
                for digest, entry in self._entries.items()
                if entry[1] is None or entry[1].tenant_id != tenant_id
            }

    def owner(self, key: str) -> KeyOwner | None:
        hit, owner = self.cached(key)
        if hit:
            return owner
        digest = hash_key(key)
        owner = self._lookup(digest)
        ttl = self._ttl_s if owner is not None else self._negative_ttl_s
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[digest] = (time.monotonic() + ttl, owner)
        return owner
