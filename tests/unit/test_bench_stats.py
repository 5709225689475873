"""The bench's pure logic (bench/stats.py): no servers, no timing."""

from __future__ import annotations

import pytest

from bench.stats import Figure, Stat, Target, regressions, render_table, worse_by


def figure(name="f", median=10.0, *, ceiling=None, higher=True, target=None) -> Figure:
    return Figure(
        name, "x", Stat.of([median]), higher, ceiling=None if ceiling is None else Stat.of([ceiling]), target=target
    )


def test_stat_is_median_min_max_of_the_repetitions():
    assert Stat.of([3, 1, 2, 10]) == Stat(median=2.5, min=1, max=10, n=4)
    with pytest.raises(ValueError, match="at least one sample"):
        Stat.of([])


def test_ratio_reads_as_share_of_the_ceiling_in_either_direction():
    assert figure(median=8, ceiling=10, higher=True).ratio == pytest.approx(0.8)  # throughput
    assert figure(median=20, ceiling=5, higher=False).ratio == pytest.approx(0.25)  # latency
    assert figure(median=8).ratio is None


def test_targets_on_value_or_ratio():
    assert figure(median=8, ceiling=10, target=Target(">=", 0.8, on="ratio")).passed is True
    assert figure(median=7, ceiling=10, target=Target(">=", 0.8, on="ratio")).passed is False
    assert figure(median=30, higher=False, target=Target("<=", 25)).passed is False
    assert figure(median=30).passed is None
    with pytest.raises(ValueError):
        Target("<", 1)


def test_worse_by_follows_the_figures_direction():
    assert worse_by(75, 100, higher_is_better=True) == pytest.approx(0.25)
    assert worse_by(125, 100, higher_is_better=False) == pytest.approx(0.25)
    assert worse_by(125, 100, higher_is_better=True) < 0


def test_regressions_flag_past_the_tolerance_and_tell_noise_from_code():
    baseline = [
        figure("rate", 100, ceiling=100),
        figure("latency", 10, higher=False),
        figure("steady", 100, ceiling=100),
    ]
    current = [
        figure("rate", 70, ceiling=100),  # 30 % worse, ceiling did not move: the code
        figure("latency", 11, higher=False),  # 10 % worse: within tolerance
        figure("steady", 70, ceiling=70),  # 30 % worse, but so is the ceiling: the machine
        figure("new", 1),  # not in the baseline
    ]
    found = {r.name: r for r in regressions(current, baseline)}
    assert set(found) == {"rate", "steady"}
    assert found["rate"].worse_by == pytest.approx(0.30) and not found["rate"].ratio_steady
    assert found["steady"].ratio_steady
    assert "70 x vs baseline 100 x, 30% worse" in found["rate"].describe()


def test_figures_round_trip_through_json_dicts():
    original = figure("rt", 8, ceiling=10, target=Target(">=", 0.8, on="ratio"))
    assert Figure.from_dict(original.to_dict()) == original


def test_table_has_one_aligned_row_per_figure_with_its_verdict():
    table = render_table(
        [
            Figure(
                "kafka",
                "msg/s",
                Stat.of([900, 1000, 1100]),
                True,
                ceiling=Stat.of([1000]),
                target=Target(">=", 0.8, on="ratio"),
            ),
            figure("p95", 30, higher=False, target=Target("<=", 25)),
        ]
    )
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["figure", "unit"] and set(lines[1]) <= {"-", " "}
    assert "1,000 [900..1,100]" in lines[2] and "1.00" in lines[2] and lines[2].endswith("pass")
    assert lines[3].endswith("FAIL") and "<= 25 x" in lines[3]


def test_results_carry_each_target_and_its_verdict():
    met = figure(median=8, ceiling=10, target=Target(">=", 0.8, on="ratio")).to_dict()
    assert met["target"] == {"op": ">=", "limit": 0.8, "on": "ratio"} and met["pass"] is True
    assert figure(median=7, ceiling=10, target=Target(">=", 0.8, on="ratio")).to_dict()["pass"] is False
    assert figure(median=7).to_dict()["pass"] is None  # no target, no verdict
