"""Data Docs that render offline: GX's pages load jQuery, Bootstrap, bootstrap-table, Font Awesome and Vega from
public CDNs, so a run's ``data_docs/index.html`` opened on an air-gapped network (or served by the Journey UI to a
browser without internet) shows empty tables. The same files, pinned and checked against the npm registry's
sha512 integrity, are fetched once (``python -m plugins.journey.docs_assets``: `make venv` and the Airflow image
run it) into ``VENDOR_DIR``; :func:`bundle` copies them into each site and points its pages at them.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import re
import shutil
import sys
import tarfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

VENDOR_DIR = Path(__file__).resolve().parent.parent / "ui" / "static" / "vendor"
SITE_DIR = "static/vendor"
REGISTRY = "https://registry.npmjs.org"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str  # the registry's dist.integrity of the tarball
    # CDN URL as GX's templates write it -> the file inside the package
    files: dict[str, str] = field(default_factory=dict)
    # whole directories a file needs beside it (Font Awesome's CSS loads ../webfonts/)
    dirs: tuple[str, ...] = ()

    @property
    def tarball(self) -> str:
        return f"{REGISTRY}/{self.name}/-/{self.name.rsplit('/', 1)[-1]}-{self.version}.tgz"

    @property
    def local(self) -> str:
        return f"{self.name.replace('/', '__')}@{self.version}"


PACKAGES: tuple[Package, ...] = (
    Package(
        "jquery",
        "3.7.1",
        "sha512-m4avr8yL8kmFN8psrbFFFmB/If14iN5o9nw/NgnnM+kybDJpRsAynV2BsfpTYrTRysYUdADVD7CkUUizgkpLfg==",
        {"https://code.jquery.com/jquery-3.7.1.min.js": "dist/jquery.min.js"},
    ),
    Package(
        "popper.js",
        "1.12.9",
        "sha512-s0EEi9xiSCdqz9lV4IiVH5yIZnDX/U1t0tCjB+0jXx9jW8lrR7kOpVupiUg175ogqVoudpDXHF1p6dKATCHMeg==",
        {"https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "dist/umd/popper.min.js"},
    ),
    Package(
        "bootstrap",
        "4.3.1",
        "sha512-rXqOmH1VilAt2DyPzluTi2blhk17bO7ef+zLLPlWvG494pDxcM234pJ8wTc/6R40UWizAIIMgxjvxZg5kmsbag==",
        {
            "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "dist/js/bootstrap.min.js",
            "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "dist/css/bootstrap.min.css",
        },
    ),
    Package(
        "bootstrap-table",
        "1.19.1",
        "sha512-WvV+l1AI/C+zThaKmfHmi/IuayVNB0qdFyEhFx1jyZhO0oLtNJNANkCR3rvJf6Dkh72dsLElxpE/bzK9seEQLA==",
        {
            "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "dist/bootstrap-table.min.js",
            "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "dist/bootstrap-table.min.css",
            "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": "dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
            # GX's pages ask for 1.19.0's stylesheet of the extension, next to 1.19.1's script.
            "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css": "dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
            "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css": "dist/extensions/filter-control/bootstrap-table-filter-control.css",
        },
    ),
    Package(
        "bootstrap-datepicker",
        "1.9.0",
        "sha512-9rYYbaVOheGYxjOr/+bJCmRPihfy+LkLSg4fIFMT9Od8WwWB/MB50w0JO1eBgKUMbb7PFHQD5uAfI3ArAxZRXA==",
        {
            "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": "dist/js/bootstrap-datepicker.min.js",
            "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": "dist/css/bootstrap-datepicker.min.css",
        },
    ),
    Package(
        "@fortawesome/fontawesome-free",
        "6.6.0",
        "sha512-60G28ke/sXdtS9KZCpZSHHkCbdsOGEhIUGlwq6yhY74UpTiToIh8np7A8yphhM4BWsvNFtIvLpi4co+h9Mr9Ow==",
        {"https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "css/all.min.css"},
        dirs=("webfonts",),
    ),
    Package(
        "@forevolve/bootstrap-dark",
        "1.1.0",
        "sha512-A3ucpEpxPoTVO490lZZCfjPXxv832l7mm1IxX3bXyxvgwnPGXDLyh7dWrphXKO8YBAu3EswbBEu3VSW8NRMW3A==",
        {
            "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": "dist/css/bootstrap-prefers-dark.css"
        },
    ),
    # GX asks for the newest vega@5 / vega-lite@5 / vega-embed@6; these are those majors' versions of 2026-12-02.
    Package(
        "vega",
        "5.33.1",
        "sha512-1fArfVDUqVbb5z8n+/nVQb+VNBzx8svY6CrsyTK4Ujm4yrd9I1auoKxBAPXLCavY1LcrbHUskQbGUP8gXOzyQw==",
        {"https://cdn.jsdelivr.net/npm/vega@5": "build/vega.min.js"},
    ),
    Package(
        "vega-lite",
        "5.23.0",
        "sha512-l4J6+AWE3DIjvovEoHl2LdtCUkfm4zs8Xxx7INwZEAv+XVb6kR6vIN1gt3t2gN2gs/y4DYTs/RPoTeYAuEg6mA==",
        {"https://cdn.jsdelivr.net/npm/vega-lite@5": "build/vega-lite.min.js"},
    ),
    Package(
        "vega-embed",
        "6.29.0",
        "sha512-PmlshTLtLFLgWtF/b23T1OwX53AugJ9RZ3qPE2c01VFAbgt3/GSNI/etzA/GzdrkceXFma+FDHNXUppKuM0U6Q==",
        {"https://cdn.jsdelivr.net/npm/vega-embed@6": "build/vega-embed.min.js"},
    ),
)

# An attribute value holding one of the CDN URLs; integrity/crossorigin go with it (the file is now local).
_ATTRIBUTE = re.compile(r'(?P<attr>src|href)="(?P<url>https://[^"]+)"(?P<rest>[^>]*)>')
_SRI = re.compile(r'\s+(integrity="[^"]*"|crossorigin="[^"]*")')
# GX's navbar logo comes from its web-assets bucket; the same image ships in every site's static/images.
GX_IMAGES = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"


def local_paths() -> dict[str, str]:
    """CDN URL -> path under ``VENDOR_DIR`` (and under a site's ``static/vendor``)."""
    return {url: f"{p.local}/{inner}" for p in PACKAGES for url, inner in p.files.items()}


def missing() -> list[str]:
    return [path for path in local_paths().values() if not (VENDOR_DIR / path).is_file()]


def fetch(*, into: Path = VENDOR_DIR) -> list[str]:
    """Download what is missing from the npm registry, checking each tarball's sha512; returns what was fetched."""
    fetched = []
    for package in PACKAGES:
        wanted = [f"{package.local}/{inner}" for inner in package.files.values()]
        if all((into / path).is_file() for path in wanted):
            continue
        with urllib.request.urlopen(package.tarball, timeout=60) as response:  # noqa: S310 (a fixed https URL)
            data = response.read()
        digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
        if digest != package.integrity:
            raise RuntimeError(f"{package.tarball}: expected integrity {package.integrity}, found {digest}")
        keep = set(package.files.values())
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar.getmembers():
                inner = member.name.split("/", 1)[1] if "/" in member.name else member.name
                if member.isfile() and (inner in keep or any(inner.startswith(d + "/") for d in package.dirs)):
                    target = into / package.local / inner
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(tar.extractfile(member).read())
        fetched.append(package.local)
    return fetched


def bundle(site_dir: str | os.PathLike[str]) -> int:
    """Copy the assets into a built Data Docs site and point its pages at them; returns the pages rewritten.

    Without the assets (never fetched) the pages keep their CDN links and a warning says how to fetch them."""
    site = Path(site_dir)
    absent = missing()
    if absent:
        log.warning(
            "Data Docs keep their CDN links: %d assets missing under %s (run: python -m plugins.journey.docs_assets)",
            len(absent),
            VENDOR_DIR,
        )
        return 0
    shutil.copytree(VENDOR_DIR, site / SITE_DIR, dirs_exist_ok=True)
    paths = local_paths()
    rewritten = 0
    for page in site.rglob("*.html"):
        prefix = os.path.relpath(site / SITE_DIR, page.parent).replace(os.sep, "/")
        images = os.path.relpath(site / "static" / "images", page.parent).replace(os.sep, "/")
        text = page.read_text()

        def local(match: re.Match[str], prefix: str = prefix, images: str = images) -> str:
            url = match["url"]
            if url.startswith(GX_IMAGES):
                name = url[len(GX_IMAGES) :].split("?", 1)[0]
                found = (site / "static" / "images" / name).is_file()
                return f'{match["attr"]}="{images}/{name}"{match["rest"]}>' if found else match[0]
            if url not in paths:
                return match[0]
            return f'{match["attr"]}="{prefix}/{paths[url]}"{_SRI.sub("", match["rest"])}>'

        new = _ATTRIBUTE.sub(local, text)
        if new != text:
            page.write_text(new)
            rewritten += 1
    return rewritten


if __name__ == "__main__":
    done = fetch()
    print(f"Data Docs assets in {VENDOR_DIR}: " + (f"fetched {', '.join(done)}" if done else "all present"))
    sys.exit(1 if missing() else 0)
