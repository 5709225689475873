"""`make bench`: the platform's performance figures, each next to a ceiling measured in the same run.

The machines are shared and noisy, so a figure alone says little: every figure is the median of a few
repetitions (with min and max) and, where one exists, is compared with what the bare tool achieves on
the same server at the same moment (the ceiling). Results go to bench/results/<timestamp>.json and
bench/results/latest.json; bench/baseline.json is the committed reference for the regression check.
"""

import os

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS_DIR = os.path.join(HERE, "results")
BASELINE = os.path.join(HERE, "baseline.json")
