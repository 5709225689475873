"""Every journey stage has its module, its GX suite and its unit test under one name."""

from __future__ import annotations

import glob
import os

import pytest

from plugins.journey import ALL_STAGES
from plugins.journey.tasks import STAGE_MODULES

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.mark.parametrize("stage", ALL_STAGES)
def test_stage_suite_and_test_share_a_name(stage):
    assert STAGE_MODULES[stage].__file__ == os.path.join(ROOT, "plugins", "journey", f"{stage}.py")
    assert glob.glob(os.path.join(ROOT, "expectations", f"{stage}*")), f"no suite expectations/{stage}*"
    assert os.path.isfile(os.path.join(ROOT, "tests", "unit", "journey", f"test_{stage}.py"))
