import statistics

import pytest

from paramviz.sweep.collect import Arm, Sweep
from paramviz.sweep.tables import (
    DDOF,
    METRIC_DIRECTIONS,
    Stat,
    best_groups,
    csv_columns,
    format_number,
    format_stat,
    summarize,
)


def sweep_of(values: dict[tuple[str, int], dict[str, float]], status: dict | None = None) -> Sweep:
    arms = [
        Arm(f"a{i}", {"param.name": p, "seed": s}, (status or {}).get((p, s), "done"), metrics=dict(m))
        for i, ((p, s), m) in enumerate(values.items())
    ]
    names = list(dict.fromkeys(k for m in values.values() for k in m))
    return Sweep(
        path=None, task="visualize", axes=["param.name", "seed"], arms=arms, sweep_toml=None, metric_names=names
    )


def test_stat_is_mean_and_sample_std():
    assert DDOF == 1
    stat = Stat.of([1.0, 2.0, 3.0])
    assert (stat.mean, stat.std, stat.n) == (2.0, 1.0, 3)
    values = [0.3, 1.7, 2.2, 9.0]
    stat = Stat.of(values)
    assert stat.mean == pytest.approx(statistics.mean(values)) and stat.std == pytest.approx(statistics.stdev(values))
    assert Stat.of([4.0]) == Stat(4.0, None, 1) and Stat.of([]) is None


def test_format_stat_and_number():
    assert format_stat(Stat(2.0, 1.0, 3)) == "2.000 ± 1.000"
    assert format_stat(Stat(2.0, None, 1)) == "2.000" and format_stat(None) == "—"
    assert format_number(0.0) == "0.000" and format_number(-12.3456) == "-12.346"
    assert format_number(1.5e-6) == "1.500e-06" and format_number(2.5e7) == "2.500e+07"


def test_summarize_groups_seeds_and_skips_unfinished_arms():
    values = {("pixel", 0): {"hf_energy": 1.0}, ("pixel", 1): {"hf_energy": 3.0}, ("pixel", 2): {"hf_energy": 99.0}}
    values[("fourier", 0)] = {"hf_energy": 0.5, "ssim_content": 0.9}
    groups = summarize(sweep_of(values, status={("pixel", 2): "failed"}))
    assert [g.axes for g in groups] == [{"param.name": "pixel"}, {"param.name": "fourier"}]
    assert groups[0].stats["hf_energy"] == Stat(2.0, 2**0.5, 2) and groups[0].n_done == 2 and len(groups[0].arms) == 3
    assert "ssim_content" not in groups[0].stats and groups[1].stats["ssim_content"].n == 1


def test_best_groups_follow_the_documented_direction():
    assert METRIC_DIRECTIONS["hf_energy"] == "lower" and METRIC_DIRECTIONS["transfer"] == "higher"
    values = {
        (p, 0): {"hf_energy": h, "transfer": t, "mystery": h} for p, h, t in [("a", 1, 5), ("b", 1, 2), ("c", 3, 7)]
    }
    groups = summarize(sweep_of(values))
    assert best_groups(groups, "hf_energy") == {0, 1}  # ties are all best
    assert best_groups(groups, "transfer") == {2}
    assert best_groups(groups, "mystery") == set()  # unknown direction: unmarked
    assert best_groups(groups[:1], "hf_energy") == set()  # nothing to compare with


def test_csv_columns_keep_axes_and_rename_a_metric_that_clashes():
    sweep = sweep_of({("pixel", 0): {"seed": 1.0, "hf_energy": 2.0}})
    assert csv_columns(sweep) == [
        "id",
        "status",
        "param.name",
        "seed",
        "metric:seed",
        "hf_energy",
        "final_loss",
        "wall_seconds",
        "error",
    ]
