import itertools

from paramviz.sweep.collect import Arm, Sweep
from paramviz.sweep.plots import MAX_LINES, _panel, plot_filename


class RecordingAxes:
    """Stands in for a matplotlib Axes: records errorbar calls, ignores the rest."""

    def __init__(self):
        self.lines = []

    def errorbar(self, xs, ys, yerr, label=None, **kwargs):
        self.lines.append({"xs": xs, "ys": ys, "yerr": yerr, "label": label})

    def get_legend_handles_labels(self):
        return [], []

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def sweep_with(axes_values: dict[str, list], seeds=(0, 1)) -> Sweep:
    keys = [*axes_values, "seed"]
    arms = []
    for i, combo in enumerate(itertools.product(*axes_values.values(), seeds)):
        values = dict(zip(keys, combo, strict=True))
        m = sum(axes_values[k].index(values[k]) * 10**j for j, k in enumerate(axes_values)) + values["seed"]
        arms.append(Arm(f"a{i}", values, "done", metrics={"m": float(m)}))
    return Sweep(path=None, task="visualize", axes=keys, arms=arms, sweep_toml=None, metric_names=["m"])


def test_one_line_per_combination_of_the_other_axes_with_seed_spread():
    sweep = sweep_with({"a": ["x", "y", "z"], "b": ["p", "q"]})
    ax = RecordingAxes()
    _panel(ax, sweep, "m", "a", ["b"])
    assert [line["label"] for line in ax.lines] == ["b=p", "b=q"]
    # a's index + 10 * b's index + seed (0, 1): means +0.5, std sqrt(0.5) (ddof=1)
    assert ax.lines[1]["ys"] == [10.5, 11.5, 12.5]
    assert all(e == 0.5**0.5 for e in ax.lines[1]["yerr"])
    assert ax.lines[0]["xs"][0] < 0 < ax.lines[1]["xs"][0]  # dodged around the category


def test_many_combinations_are_pooled_into_one_line():
    sweep = sweep_with({"a": ["x", "y"], "b": list("pqrs"), "c": ["u", "v"]})  # 8 combinations of b, c
    assert MAX_LINES < 4 * 2
    ax = RecordingAxes()
    _panel(ax, sweep, "m", "a", ["b", "c"])
    assert [line["label"] for line in ax.lines] == ["pooled over b, c"]
    assert ax.lines[0]["xs"] == [0, 1] and len(ax.lines[0]["ys"]) == 2


def test_plot_filenames_are_safe_and_unique():
    taken = set()
    assert plot_filename("style_image:hf_energy", taken) == "style_image_hf_energy.png"
    assert plot_filename("style_image/hf_energy", taken) == "style_image_hf_energy_2.png"
    assert plot_filename("../..", taken) == "metric.png"
