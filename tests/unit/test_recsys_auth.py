from __future__ import annotations

import hashlib
import inspect

from include.recsys.api import auth


def _owner(tenant_id: str, *, key_id: str = "k1", limit: int = 20_000) -> auth.KeyOwner:
    return auth.KeyOwner(
        key_id=key_id,
        tenant_id=tenant_id,
        tenant_slug="acme",
        prefix="rk_x",
        plan="default",
        rate_limit=limit,
        rate_window_s=10.0,
    )


def test_keys_are_long_random_and_stored_as_sha256_hex():
    first, second = auth.generate_key(), auth.generate_key()
    assert first != second
    assert first.startswith(auth.KEY_PREFIX) and len(first) >= len(auth.KEY_PREFIX) + 43  # 32 bytes, base64url
    assert auth.hash_key(first) == hashlib.sha256(first.encode()).hexdigest()
    assert auth.display_prefix(first) == first[: auth.DISPLAY_PREFIX_CHARS]
    assert auth.display_prefix(first) not in (first, auth.hash_key(first))


def test_bearer_token_parsing():
    assert auth.bearer_token("Bearer abc") == "abc"
    assert auth.bearer_token("bearer  abc ") == "abc"
    assert auth.bearer_token("Basic abc") is None
    assert auth.bearer_token("Bearer ") is None
    assert auth.bearer_token(None) is None


def test_admin_check_uses_constant_time_compare(compare_digest_calls):
    calls = compare_digest_calls
    assert auth.bearer_matches("Bearer s3cret", token="s3cret")
    assert not auth.bearer_matches("Bearer s3cres", token="s3cret")
    assert not auth.bearer_matches("Bearer s3cret-longer", token="s3cret")
    assert not auth.bearer_matches(None, token="s3cret")
    assert len(calls) == 3  # every presented token went through compare_digest, none through ==
    assert "==" not in inspect.getsource(auth.bearer_matches)


def test_key_cache_hits_memory_and_caches_unknown_keys_briefly():
    owner = _owner("t1")
    lookups = []

    def lookup(digest: str):
        lookups.append(digest)
        return owner if digest == auth.hash_key("good") else None

    cache = auth.KeyCache(lookup, ttl_s=60, negative_ttl_s=60)
    assert cache.cached("good") == (False, None)
    assert cache.owner("good") is owner
    assert cache.owner("good") is owner
    assert cache.cached("good") == (True, owner)
    assert cache.owner("bad") is None and cache.owner("bad") is None
    assert cache.cached("bad") == (True, None)
    assert lookups == [auth.hash_key("good"), auth.hash_key("bad")]  # hashes only, each looked up once


def test_a_forgotten_key_is_looked_up_again_so_a_revocation_takes_effect_at_once():
    owner = _owner("t1")
    revoked = set()
    cache = auth.KeyCache(lambda digest: None if digest in revoked else owner, ttl_s=60)
    assert cache.owner("key") is owner
    revoked.add(auth.hash_key("key"))
    assert cache.owner("key") is owner  # cached: another process's revocation waits for the TTL
    cache.forget(auth.hash_key("key"))
    assert cache.owner("key") is None


def test_key_owner_matches_tenant_by_id_or_slug():
    owner = _owner("t1")
    assert owner.owns("t1") and owner.owns("acme")
    assert not owner.owns("other") and not owner.owns("")


def test_forgetting_a_tenant_drops_only_its_keys_so_a_plan_change_applies_at_once():
    tenant_of = {auth.hash_key("a"): "t1", auth.hash_key("b"): "t2"}
    plans = {"t1": 100, "t2": 100}
    cache = auth.KeyCache(lambda digest: _owner(tenant_of[digest], limit=plans[tenant_of[digest]]), ttl_s=60)
    assert cache.owner("a").rate_limit == 100 and cache.owner("b").rate_limit == 100
    plans.update(t1=5, t2=5)
    cache.forget_tenant("t1")
    assert cache.owner("a").rate_limit == 5  # looked up again: the new plan
    assert cache.owner("b").rate_limit == 100  # the other tenant's key stays cached until its TTL
