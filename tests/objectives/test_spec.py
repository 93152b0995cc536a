from __future__ import annotations

import pytest
import torch

from paramviz.errors import SpecError, UnknownNameError
from paramviz.objectives.activation import (
    OBJECTIVES,
    Alignment,
    Channel,
    ChannelInterpolate,
    ClassLogit,
    DeepDream,
    Direction,
    DirectionNeuron,
    Diversity,
    Neuron,
)
from paramviz.objectives.base import WeightedSum
from paramviz.objectives.penalties import INPUT_KEY, L1, L2, BlurPenalty, TotalVariation
from paramviz.objectives.reference import Caricature, InputDiff, Inversion
from paramviz.objectives.spec import EXAMPLES, SPEC_HELP, parse_objective, parse_objectives, spec_kinds
from paramviz.registry import Entry

# spec -> (class, {attribute: expected value})
FORMS = {
    "layer3:12": (Channel, {"layer": "layer3", "index": 12, "batch": None}),
    "channel:layer3:12": (Channel, {"layer": "layer3", "index": 12}),
    "layer3.1.conv2:5": (Channel, {"layer": "layer3.1.conv2", "index": 5}),
    "layer3:3|7|9": (Channel, {"index": (3, 7, 9)}),
    "layer3:12@2": (Channel, {"index": 12, "batch": 2}),
    " layer3 : 12 ": (Channel, {"layer": "layer3", "index": 12}),
    "layer3:12:5:7": (Neuron, {"layer": "layer3", "index": 12, "x": 5, "y": 7}),
    "neuron:layer3:12": (Neuron, {"index": 12, "x": None, "y": None}),
    "neuron:layer3:1|2:0:3": (Neuron, {"index": (1, 2), "x": 0, "y": 3}),
    "logit:967": (ClassLogit, {"layer": "logits", "index": 967}),
    "logit:espresso": (ClassLogit, {"index": 967, "labels": "espresso"}),
    "logit:Egyptian cat": (ClassLogit, {"index": 285}),
    "logit:espresso|7": (ClassLogit, {"index": (967, 7)}),
    "logit:fc:3": (ClassLogit, {"layer": "fc", "index": 3}),
    "logit:espresso@0": (ClassLogit, {"index": 967, "batch": 0}),
    "deepdream:mixed4a": (DeepDream, {"layer": "mixed4a", "batch": None}),
    "diversity:layer3": (Diversity, {"layer": "layer3"}),
    "direction:layer3:3": (Direction, {"layer": "layer3", "seed": 3, "vector": None, "cossim_pow": 0.0}),
    "direction:layer3:seed=4:cossim=2": (Direction, {"seed": 4, "cossim_pow": 2.0}),
    "direction_neuron:layer3:0": (DirectionNeuron, {"seed": 0, "x": None, "y": None}),
    "direction_neuron:layer3:0:2:5:cossim=1": (DirectionNeuron, {"x": 2, "y": 5, "cossim_pow": 1.0}),
    "l1": (L1, {"target": 0.0, "layer": INPUT_KEY}),
    "l1:0.5": (L1, {"target": 0.5}),
    "l2:0.25:layer3": (L2, {"target": 0.25, "layer": "layer3"}),
    "tv": (TotalVariation, {"layer": INPUT_KEY}),
    "tv:conv1": (TotalVariation, {"layer": "conv1"}),
    "neuron:blocks.11:5:token=12": (Neuron, {"layer": "blocks.11", "index": 5, "token": 12, "x": None}),
    "neuron:blocks.11:5:token=3@1": (Neuron, {"token": 3, "batch": 1}),
    "blur": (BlurPenalty, {"sigma": 1.0, "layer": INPUT_KEY}),
    "blur:2.5": (BlurPenalty, {"sigma": 2.5}),
    "blur:2:conv1": (BlurPenalty, {"sigma": 2.0, "layer": "conv1"}),
    "alignment:mixed4a": (Alignment, {"layer": "mixed4a", "decay_ratio": 2.0}),
    "alignment:mixed4a:5": (Alignment, {"decay_ratio": 5.0}),
    "channel_interpolate:mixed4a:476:mixed4b:460": (
        ChannelInterpolate,
        {"first.layer": "mixed4a", "first.index": 476, "second.layer": "mixed4b", "second.index": 460},
    ),
    "input_diff:sample:chelsea": (InputDiff, {"reference.source": "sample:chelsea", "layer": INPUT_KEY}),
    "input_diff:C:/photos/cat.png": (InputDiff, {"reference.source": "C:/photos/cat.png"}),
    "inversion:layer3:sample:chelsea": (Inversion, {"layer": "layer3", "reference.source": "sample:chelsea"}),
    "inversion:layer3:cat.jpg@1": (Inversion, {"reference.source": "cat.jpg", "batch": 1}),
    "caricature:layer3:sample:chelsea": (Caricature, {"reference.source": "sample:chelsea", "power": 1.0}),
    "caricature:layer3:photos/cat.png:2": (Caricature, {"reference.source": "photos/cat.png", "power": 2.0}),
    "caricature:layer3:2": (Caricature, {"reference.source": "2", "power": 1.0}),  # a lone part is the image
}


@pytest.mark.parametrize("spec", FORMS)
def test_every_form_parses_to_the_right_class_and_arguments(spec):
    cls, attrs = FORMS[spec]
    objective = parse_objective(spec)
    assert type(objective) is cls
    for key, value in attrs.items():
        target = objective
        for part in key.split("."):
            target = getattr(target, part)
        assert target == value, key


@pytest.mark.parametrize("kind", spec_kinds())
def test_every_spec_kind_has_examples_that_parse_to_its_class(kind):
    for example in EXAMPLES[kind].split(" or "):
        [(_, leaf)] = parse_objective(example).leaves()
        assert type(leaf) is OBJECTIVES.get(kind), example


def test_a_one_value_direction_is_not_read_back_as_a_seed():
    objective = Direction("a", [2.0])
    assert objective.name == "direction:a:2.0"
    again = parse_objective(objective.name)
    assert again.seed is None and again.vector.tolist() == [2.0]


def test_direction_with_explicit_values():
    objective = parse_objective("direction:layer3:1|0|-0.5:cossim=1")
    assert type(objective) is Direction
    torch.testing.assert_close(objective.vector, torch.tensor([1.0, 0.0, -0.5]))
    assert objective.cossim_pow == 1.0


@pytest.mark.parametrize("spec", list(FORMS) + ["direction:a:1|0|-0.5:cossim=1", "2*layer3:4"])
def test_names_parse_back_to_the_same_objective(spec):
    objective = parse_objective(spec)
    again = parse_objective(objective.name)
    assert again.name == objective.name
    assert [type(leaf) for _, leaf in again.leaves()] == [type(leaf) for _, leaf in objective.leaves()]
    assert [w for w, _ in again.leaves()] == [w for w, _ in objective.leaves()]


@pytest.mark.parametrize(
    ("spec", "weight"),
    [("0.5*layer3:12", 0.5), ("-layer3:12", -1.0), ("-0.5 * layer3:12", -0.5), ("1e-2*tv", 0.01), ("+2*l1", 2.0)],
)
def test_weight_prefixes(spec, weight):
    objective = parse_objective(spec)
    assert isinstance(objective, WeightedSum)
    [(w, leaf)] = objective.leaves()
    assert w == pytest.approx(weight)
    assert not isinstance(leaf, WeightedSum)


def test_unweighted_spec_is_the_leaf_itself():
    assert type(parse_objective("layer3:12")) is Channel


def test_parse_objectives_sums_the_terms():
    total = parse_objectives(["layer3:12", "0.05*tv", "-diversity:layer3"])
    assert [(w, type(o)) for w, o in total.leaves()] == [(1.0, Channel), (0.05, TotalVariation), (-1.0, Diversity)]
    assert total.layers() == {"layer3", INPUT_KEY}
    assert type(parse_objectives(["layer3:12"])) is Channel
    assert type(parse_objectives("layer3:12")) is Channel


def test_parse_objectives_needs_at_least_one_spec():
    with pytest.raises(SpecError, match="no objective"):
        parse_objectives([])


@pytest.mark.parametrize(
    ("spec", "bad"),
    [
        ("layer3:x", "x"),
        ("layer3:3|x", "x"),
        ("layer3:-1", "-1"),
        ("layer3:12:5", "12:5"),
        ("layer3:12:5:y", "y"),
        ("layer3:1:2:3:4", "4"),
        ("channel:layer3", "layer3"),
        ("channel::3", ""),
        ("neuron:layer3:12:5", "layer3:12:5"),
        ("deepdream", "deepdream"),
        ("deepdream:a:b", "a:b"),
        ("abc*layer3:1", "abc"),
        ("nan*layer3:1", "nan"),
        ("2*3*l1", "3*l1"),
        ("0.5*-layer3:1", "-layer3:1"),
        ("0.5*", "0.5*"),
        ("", ""),
        ("layer3:1@x", "x"),
        ("diversity:layer3@0", "@0"),
        ("tv@1", "@1"),
        ("l1:foo", "foo"),
        ("l1:0:a:b", "0:a:b"),
        ("direction:layer3:1|a", "a"),
        ("direction:layer3:seed=x", "x"),
        ("direction:layer3", "layer3"),
        ("direction:layer3:0:cossim=z", "z"),
        ("logit:", ""),
        ("logit:3||4", "3||4"),
        ("layer3", "layer3"),
        ("neuron:layer3:1:token=x", "x"),
        ("neuron:layer3:1:token=-2", "-2"),
        ("blur:0", "0"),
        ("blur:-1", "-1"),
        ("blur:soft", "soft"),
        ("blur:1:a:b", "1:a:b"),
        ("blur@0", "@0"),
        ("alignment", "alignment"),
        ("alignment:layer3:0", "0"),
        ("alignment:layer3:x", "x"),
        ("alignment:layer3:2:3", "layer3:2:3"),
        ("alignment:layer3@1", "@1"),
        ("channel_interpolate:a:1:b", "a:1:b"),
        ("channel_interpolate:a:x:b:2", "x"),
        ("channel_interpolate:a:1:b:2:3", "a:1:b:2:3"),
        ("channel_interpolate::1:b:2", ""),
        ("input_diff", "input_diff"),
        ("input_diff:", ""),
        ("input_diff:sample:chelsea@0", "@0"),
        ("inversion:layer3", "layer3"),
        ("inversion:layer3:", ""),
        ("inversion::cat.png", ""),
        ("inversion:layer3:cat.png@x", "x"),
        ("caricature:layer3", "layer3"),
        ("caricature:layer3:cat.png:0", "0"),
        ("caricature:layer3:cat.png:-1", "-1"),
        ("caricature:layer3:cat.png:inf", "inf"),
        ("caricature:layer3::2", ""),
    ],
)
def test_malformed_specs_name_the_bad_part(spec, bad):
    with pytest.raises(SpecError) as info:
        parse_objective(spec)
    message = str(info.value)
    assert f"bad part: {bad!r}" in message
    assert repr(spec) in message and "e.g." in message


def test_constructor_errors_become_spec_errors_naming_the_spec():
    with pytest.raises(SpecError, match=r"'layer3:3\|7@1'.*not both"):
        parse_objective("layer3:3|7@1")
    with pytest.raises(SpecError, match="cossim_pow"):
        parse_objective("direction:a:0:cossim=-1")


@pytest.mark.parametrize(
    ("spec", "suggestion"),
    [("chanel:layer3:5", "channel"), ("deepdraem:layer3", "deepdream"), ("tvv", "tv"), ("logits:espresso", "logit")],
)
def test_misspelt_kinds_suggest_the_right_one(spec, suggestion):
    with pytest.raises(UnknownNameError) as info:
        parse_objective(spec)
    assert suggestion in info.value.suggestions
    assert repr(spec.split(":")[0]) in str(info.value)


def test_unknown_class_label_is_an_unknown_name():
    with pytest.raises(UnknownNameError, match="espreso"):
        parse_objective("logit:espreso")


def test_registered_kind_without_a_spec_form_is_explained(monkeypatch):
    monkeypatch.setitem(OBJECTIVES._entries, "fancy", Entry("fancy", Channel, "a test-only kind"))
    with pytest.raises(SpecError, match="'fancy' has no spec form"):
        parse_objective("fancy:layer3")


def test_help_mentions_every_spec_kind():
    kinds = spec_kinds()
    assert set(kinds) == set(OBJECTIVES.names()) & set(kinds)
    assert {"channel", "neuron", "logit", "deepdream", "diversity", "direction", "l1", "l2", "tv"} <= set(kinds)
    assert {"blur", "alignment", "channel_interpolate", "input_diff", "inversion", "caricature"} <= set(kinds)
    for kind in kinds:
        assert kind in SPEC_HELP, kind


def test_parsed_objectives_evaluate():
    features = {"layer3": torch.randn(3, 10, 4, 4), INPUT_KEY: torch.rand(3, 3, 8, 8)}
    total, terms = parse_objectives(["layer3:3|7|9", "0.1*tv", "50*diversity:layer3"]).evaluate(features)
    assert total.shape == (3,)
    assert list(terms) == ["channel:layer3:3|7|9", "tv", "diversity:layer3"]


def test_image_specs_do_not_read_the_image_when_parsed(tmp_path):
    missing = tmp_path / "nowhere.png"
    objective = parse_objective(f"inversion:layer3:{missing}")  # the file is read when a render starts
    assert objective.reference.source == str(missing) and objective.reference.image is None
    assert parse_objective(objective.name).name == objective.name


def test_the_image_of_a_spec_is_found_and_mapped():
    from paramviz.objectives.spec import map_spec_image, spec_image

    cases = {
        "input_diff:img.png": "img.png",
        "0.5*input_diff:sample:chelsea@1": "sample:chelsea",
        "inversion:stage4:photos/a.png": "photos/a.png",
        "caricature:stage4:a.png:2": "a.png",
        "-caricature:layer3:C:/x/a.png": "C:/x/a.png",
    }
    for spec, image in cases.items():
        assert spec_image(spec) == image, spec
        mapped = map_spec_image(spec, lambda p: "/abs/" + p)
        assert spec_image(mapped) == "/abs/" + image and mapped.replace("/abs/" + image, image) == spec
    assert spec_image("stage4:12") is None and map_spec_image("0.5*tv", str.upper) == "0.5*tv"
    assert parse_objective(map_spec_image("caricature:stage4:a.png:2", lambda p: "/abs/" + p)).name.endswith(":2")
