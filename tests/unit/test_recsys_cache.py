"""Cache keys: a tenant and version prefix that SCAN can match, and the tenant's own text only as a digest."""

from __future__ import annotations

import fnmatch

from include.recsys.api.cache import ResponseCache, entry_key, version_pattern


def test_entries_are_scoped_by_tenant_and_version_and_differ_by_request():
    base = {"tenant_id": "t1", "version": "v1", "user_id": "u1", "count": 10, "category": None}
    key = entry_key(**base)
    assert key.startswith("recs:v1:t1:v1:")
    variants = [{"tenant_id": "t2"}, {"version": "v2"}, {"user_id": "u2"}, {"count": 5}, {"category": "Books"}]
    assert len({key, *(entry_key(**{**base, **change}) for change in variants)}) == 1 + len(variants)
    assert fnmatch.fnmatchcase(key, version_pattern(tenant_id="t1", version="v1"))
    assert not fnmatch.fnmatchcase(key, version_pattern(tenant_id="t1", version="v2"))


def test_a_user_id_with_key_syntax_cannot_reach_another_tenant_s_prefix():
    # ':' and '*' are ordinary characters in a tenant's user ids; only the digest carries them.
    sneaky = entry_key(tenant_id="t1", version="v1", user_id="x:recs:v1:t2:v1:*", count=10, category=None)
    assert sneaky.count(":") == 4 and "*" not in sneaky
    assert not fnmatch.fnmatchcase(sneaky, version_pattern(tenant_id="t2", version="v1"))


def test_without_a_redis_url_there_is_no_cache_and_nothing_is_counted():
    cache = ResponseCache(None)
    assert cache.enabled is False and cache.invalidate(tenant_id="t", version="v") == 0
    assert cache.stats() == {"hit": 0, "miss": 0, "error": 0, "bypass": 0}
