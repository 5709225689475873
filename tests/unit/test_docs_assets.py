"""A run's Data Docs load every script, stylesheet and image from the site itself (pinned copies of GX's CDN
assets, fetched by `make venv`), so they render on an air-gapped network and through the Journey UI."""

from __future__ import annotations

import re
from pathlib import Path

from plugins.journey.docs_assets import PACKAGES, missing
from plugins.validation import build_data_docs, validate_stage
from tests.unit.stage_inputs import seed_data_input

ASSET = re.compile(r'<(?:script|link|img)\b[^>]*?\b(?:src|href)="([^"]+)"')


def test_every_asset_gx_asks_for_is_fetched():
    assert missing() == [], "run: python -m plugins.journey.docs_assets (make venv does)"


def test_gx_templates_ask_for_no_cdn_file_we_do_not_bundle():
    import great_expectations

    templates = Path(great_expectations.__file__).parent / "render" / "view" / "templates"
    asked = {
        url
        for t in templates.glob("*.j2")
        for url in re.findall(
            r'(?:src|href)="(https://[^"]+\.(?:js|css)|https://cdn\.jsdelivr\.net/npm/[^"]+)"', t.read_text()
        )
    }
    bundled = {url for p in PACKAGES for url in p.files}
    assert asked - bundled == set()


def test_data_docs_pages_load_nothing_from_outside_the_site(tmp_path):
    frames, params = seed_data_input()
    validate_stage(
        "seed_data",
        frames,
        parameters=params,
        results_dir=tmp_path / "gx",
        run_name="manual__2026-11-20T00:00:00+00:00",
    )
    index = Path(build_data_docs(tmp_path / "gx", tmp_path / "docs"))
    pages = list(index.parent.rglob("*.html"))
    assert len(pages) >= 4
    for page in pages:
        for url in ASSET.findall(page.read_text()):
            assert not url.startswith(("http://", "https://", "//")), (page.name, url)
            # (GX's own favicon link is one level off on validation pages; it is GX's, and cosmetic.)
            if "static/vendor/" in url:
                assert (page.parent / url).resolve().is_file(), (page.name, url)
