import json

import pytest

from paramviz.errors import ConfigError
from paramviz.sweep.collect import ANNOTATION_COLUMNS, arm_layer, read_sweep_dir, value_key
from paramviz.sweep.spec import format_value
from paramviz.tasks.robustness import COLUMNS


def test_format_value_labels_lists_booleans_and_numbers():
    assert format_value(["stage4:12", "tv"]) == "stage4:12, tv"
    assert format_value(True) == "true" and format_value(False) == "false"
    assert format_value(0.05) == "0.05" and format_value(3) == "3" and format_value("lucid") == "lucid"
    assert value_key(["a", "b"]) != value_key("a, b")  # a list and its label are different values


@pytest.mark.parametrize(
    ("task", "config", "layer"),
    [
        ("visualize", {"objectives": ["stage4:12"]}, "stage4"),
        ("visualize", {"objectives": ["0.5*channel:stage3:7", "tv"]}, "stage3"),  # penalties read the image
        ("visualize", {"objectives": ["logit:espresso"]}, "logits"),
        ("visualize", {"objectives": ["stage3:1", "stage4:2"]}, None),  # two layers: no single R(f)
        ("visualize", {}, None),
        ("style", {"style_layers": ["stage3"]}, "stage3"),
        ("style", {"style_layers": ["stage2", "stage3"]}, None),
        ("robustness", {"layers": ["stage3"]}, None),
    ],
)
def test_arm_layer(task, config, layer):
    assert arm_layer(task, config) == layer


def test_annotation_columns_are_robustness_csv_columns():
    assert set(ANNOTATION_COLUMNS) <= set(COLUMNS)


def test_arms_axes_must_match_the_axes_list(tmp_path):
    arms = [{"id": "a", "axes": {"seed": 0, "lr": 0.1}, "status": "done", "error": None}]
    (tmp_path / "arms.json").write_text(json.dumps({"task": "visualize", "axes": ["seed"], "arms": arms}))
    with pytest.raises(ConfigError, match="arm 'a' has axis 'lr' not in 'axes'"):
        read_sweep_dir(tmp_path)
    arms = [{"id": "a", "axes": {"seed": 0}, "status": "done"}, {"id": "a", "axes": {"seed": 1}, "status": "done"}]
    (tmp_path / "arms.json").write_text(json.dumps({"task": "visualize", "axes": ["seed"], "arms": arms}))
    with pytest.raises(ConfigError, match="arm 'a' is listed twice"):
        read_sweep_dir(tmp_path)


def test_values_keep_grid_order_and_metrics_are_collected(tmp_path):
    arms = [
        {"id": f"a{i}", "axes": {"objectives": obj, "seed": s}, "status": "done" if i else "pending"}
        for i, (obj, s) in enumerate([(["b"], 0), (["a"], 0), (["b"], 1)])
    ]
    (tmp_path / "arms.json").write_text(json.dumps({"task": "visualize", "axes": ["objectives", "seed"], "arms": arms}))
    (tmp_path / "arms" / "a1").mkdir(parents=True)
    metrics = {"final_loss": -2.0, "metrics": {"hf_energy": 0.1, "bad": "x", "nan": None}, "metrics_extra": {"e": 1}}
    (tmp_path / "arms" / "a1" / "metrics.json").write_text(json.dumps(metrics))
    sweep = read_sweep_dir(tmp_path)
    assert sweep.values("objectives") == [["b"], ["a"]] and sweep.values("seed") == [0, 1]
    assert sweep.metric_names == ["hf_energy", "e"]
    a1 = sweep.arms[1]
    assert a1.number("hf_energy") == 0.1 and a1.number("final_loss") == -2.0 and a1.number("bad") is None
    assert a1.problems == ["config.toml missing", "image.png missing"]
    assert sweep.arms[0].problems == []  # pending arms are not expected to have files
    assert sweep.arms[2].problems == ["config.toml missing", "image.png missing", "metrics.json missing"]
