"""A run's conf may name only the journey's params: a typo is refused naming the unknown and the valid keys."""

from __future__ import annotations

import pytest

from plugins.journey.tasks import UnknownConfKeys, check_conf

VALID = {"tenant": None, "n_users": 10_000, "n_items": 5_000}


def test_a_typo_is_refused_naming_unknown_and_valid_keys():
    with pytest.raises(UnknownConfKeys) as refused:
        check_conf({"tenant": "acme", "n_user": 200}, valid=VALID)
    assert str(refused.value) == "unknown conf keys: n_user; valid keys: n_items, n_users, tenant"


@pytest.mark.parametrize("conf", [None, {}, {"tenant": "acme", "n_users": 200}])
def test_known_keys_and_no_conf_pass(conf):
    check_conf(conf, valid=VALID)
