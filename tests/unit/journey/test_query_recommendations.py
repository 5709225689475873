"""query_recommendations probes the category filter with the tenant's own categories."""

from __future__ import annotations

import pandas as pd

from plugins.journey.query_recommendations import probe_categories


def test_the_most_common_categories_of_any_taxonomy_come_first():
    catalog = pd.DataFrame(
        {"category": ["Comedy|Drama", "Drama", "Drama", "Film-Noir", "Comedy|Drama", "Drama", None, ""]}
    )
    assert probe_categories(catalog) == ["Drama", "Comedy|Drama", "Film-Noir"]
    assert probe_categories(catalog, limit=1) == ["Drama"]


def test_a_catalog_without_categories_has_no_probes():
    assert probe_categories(pd.DataFrame({"category": [None, None]})) == []
    assert probe_categories(pd.DataFrame({"category": pd.Series([], dtype=object)})) == []
