from __future__ import annotations

import pytest
import torch
from objective_examples import EXAMPLES

from paramviz.backbones.base import Backbone
from paramviz.errors import ConfigError, UnknownNameError
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
    required_batch,
)
from paramviz.objectives.base import Objective
from paramviz.objectives.penalties import INPUT_KEY


def features_of(backbone: Backbone, x: torch.Tensor, objective: Objective) -> dict[str, torch.Tensor]:
    """What the render loop passes: the backbone's layers plus the image under INPUT_KEY."""
    layers = objective.layers()
    features = backbone(x, layers - {INPUT_KEY})
    if INPUT_KEY in layers:
        features[INPUT_KEY] = x
    return features


def free_image(batch: int = 2, size: int = 16, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (0.5 * torch.randn(batch, 3, size, size, generator=gen)).requires_grad_(True)


def test_every_registered_objective_has_an_example():
    missing = [name for name in OBJECTIVES.names() if name not in EXAMPLES]
    assert not missing, f"add an entry to EXAMPLES in tests/objective_examples.py for {missing}"


@pytest.mark.parametrize("name", OBJECTIVES.names())
def test_objective_contract_shape_layers_and_adam_lowers_the_loss(name, tiny_backbone):
    objective = EXAMPLES[name]()
    assert isinstance(objective, OBJECTIVES.get(name))
    assert objective.layers() <= set(tiny_backbone.layers()) | {INPUT_KEY}
    logits = free_image(batch=3)
    opt = torch.optim.Adam([logits], lr=0.1)
    history = []
    for _ in range(12):
        image = torch.sigmoid(logits)
        loss = objective(features_of(tiny_backbone, image, objective))
        assert loss.shape == (3,)
        assert torch.isfinite(loss).all()
        history.append(loss.detach())
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
    assert history[-1].mean() < history[0].mean() - 1e-4, f"{name}: {history[0]} -> {history[-1]}"


@pytest.mark.parametrize(
    "make",
    [
        lambda b: Channel("conv2", 3, batch=b),
        lambda b: Neuron("conv2", 3, batch=b),
        lambda b: Direction("conv2", seed=0, batch=b),
        lambda b: DirectionNeuron("conv2", seed=0, cossim_pow=2, batch=b),
        lambda b: ClassLogit(4, batch=b),
        lambda b: DeepDream("conv1", batch=b),
    ],
    ids=["channel", "neuron", "direction", "direction_neuron", "logit", "deepdream"],
)
def test_batch_targets_only_that_image(make, tiny_backbone):
    objective = make(1)
    image = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    loss = objective(features_of(tiny_backbone, image, objective))
    assert loss[0] == 0 and loss[2] == 0 and loss[1] != 0
    untargeted = make(None)(features_of(tiny_backbone, image, objective))
    torch.testing.assert_close(loss[1], untargeted[1])
    loss.sum().backward()
    grad_norms = image.grad.flatten(1).norm(dim=1)
    assert grad_norms[1] > 0
    assert grad_norms[0] == 0 and grad_norms[2] == 0
    assert objective.name.endswith("@1")


def test_batch_index_beyond_the_batch_is_a_config_error():
    with pytest.raises(ConfigError, match=r"targets image 4 but the batch has 2 images"):
        Channel("a", 0, batch=4)({"a": torch.zeros(2, 3, 4, 4)})


def test_channel_is_minus_the_spatial_mean():
    act = torch.randn(2, 5, 4, 6)
    torch.testing.assert_close(Channel("a", 3)({"a": act}), -act[:, 3].mean((1, 2)))
    flat = torch.randn(2, 7)
    torch.testing.assert_close(Channel("fc", 6)({"fc": flat}), -flat[:, 6])
    assert Channel("layer3", 12).name == "channel:layer3:12"
    assert Channel("layer3", 12).layers() == {"layer3"}


@pytest.mark.parametrize(
    "objective",
    [Channel("blocks.2", 8), Neuron("blocks.2", 9), ClassLogit(8, layer="blocks.2")],
    ids=["channel", "neuron", "logit"],
)
def test_index_out_of_range_names_layer_index_and_count(objective):
    with pytest.raises(ConfigError) as info:
        objective({"blocks.2": torch.zeros(1, 8, 4, 4)})
    message = str(info.value)
    assert "'blocks.2'" in message and "8 channels" in message
    assert str(objective.index) in message


def test_per_image_channel_list_targets_one_channel_per_image():
    act = torch.randn(3, 10, 4, 4)
    loss = Channel("a", [3, 7, 9])({"a": act})
    expected = torch.stack([-act[0, 3].mean(), -act[1, 7].mean(), -act[2, 9].mean()])
    torch.testing.assert_close(loss, expected)
    assert Channel("a", [3, 7, 9]).name == "channel:a:3|7|9"
    logits = torch.randn(2, 10)
    torch.testing.assert_close(ClassLogit([1, 4])({"logits": logits}), -logits[[0, 1], [1, 4]])
    neuron = Neuron("a", [2, 5, 0], x=1, y=3)({"a": act})
    torch.testing.assert_close(neuron, -act[[0, 1, 2], [2, 5, 0], 3, 1])


def test_per_image_list_must_match_the_batch_size():
    with pytest.raises(ConfigError, match=r"gives 3 channels .* batch has 2 images"):
        Channel("a", [3, 7, 9])({"a": torch.zeros(2, 10, 4, 4)})
    with pytest.raises(ConfigError, match="not both"):
        Channel("a", [3, 7], batch=0)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3", []])
def test_bad_channel_values_are_refused_at_construction(bad):
    with pytest.raises(ConfigError):
        Channel("a", bad)


def test_neuron_defaults_to_the_centre():
    act = torch.arange(2 * 3 * 5 * 8, dtype=torch.float32).reshape(2, 3, 5, 8)
    torch.testing.assert_close(Neuron("a", 1)({"a": act}), -act[:, 1, 5 // 2, 8 // 2])
    even = torch.randn(1, 2, 4, 6)
    torch.testing.assert_close(Neuron("a", 0)({"a": even}), -even[:, 0, 2, 3])


def test_neuron_x_is_the_column_and_y_the_row():
    act = torch.randn(1, 2, 5, 8)
    neuron = Neuron("a", 1, x=6, y=2)
    torch.testing.assert_close(neuron({"a": act}), -act[:, 1, 2, 6])
    assert neuron.name == "neuron:a:1:6:2"


@pytest.mark.parametrize(("x", "y", "bad"), [(8, 0, "x=8"), (0, 5, "y=5")])
def test_neuron_outside_the_map_names_the_value_and_size(x, y, bad):
    with pytest.raises(ConfigError) as info:
        Neuron("a", 0, x=x, y=y)({"a": torch.zeros(1, 2, 5, 8)})
    assert bad in str(info.value) and "5x8" in str(info.value)


def test_neuron_needs_both_coordinates_and_linear_layers_have_none():
    with pytest.raises(ConfigError, match="both x and y"):
        Neuron("a", 0, x=1)
    flat = torch.randn(2, 4)
    torch.testing.assert_close(Neuron("fc", 2)({"fc": flat}), -flat[:, 2])
    with pytest.raises(ConfigError, match="no spatial position"):
        Neuron("fc", 2, x=0, y=0)({"fc": flat})


def test_direction_without_cossim_is_minus_the_mean_dot_product():
    act = torch.randn(2, 3, 4, 5)
    vec = torch.tensor([0.5, -1.0, 2.0])
    expected = -(act * vec.view(1, 3, 1, 1)).sum(1).mean((1, 2))
    torch.testing.assert_close(Direction("a", vec)({"a": act}), expected)
    flat = torch.randn(2, 3)
    torch.testing.assert_close(Direction("a", vec)({"a": flat}), -(flat @ vec))


def test_direction_with_cossim_pow_matches_lucid():
    act = torch.randn(2, 3, 4, 5)
    vec = torch.tensor([0.5, -1.0, 2.0])
    dot = (act * vec.view(1, 3, 1, 1)).sum(1)
    cossim = dot / (act.norm(dim=1) + 1e-4) / (vec.norm() + 1e-4)
    expected = -(dot * cossim.clamp(min=0.1) ** 2).mean((1, 2))
    torch.testing.assert_close(Direction("a", vec, cossim_pow=2.0)({"a": act}), expected)


def test_cossim_pow_prefers_aligned_activations_with_the_same_dot_product():
    vec = torch.tensor([1.0, 0.0])
    aligned, oblique = torch.tensor([[2.0, 0.0]]), torch.tensor([[2.0, 3.0]])  # dot = 2 for both
    plain = Direction("a", vec)
    assert plain({"a": aligned}) == plain({"a": oblique})
    weighted = Direction("a", vec, cossim_pow=1.0)
    assert weighted({"a": aligned}) < weighted({"a": oblique})
    opposite = Direction("a", vec, cossim_pow=1.0)({"a": torch.tensor([[-2.0, 0.0]])})
    torch.testing.assert_close(opposite, torch.tensor([0.2]), atol=1e-4, rtol=0)  # -(-2 * 0.1): floored


def test_direction_vector_length_is_checked_against_the_channels():
    with pytest.raises(ConfigError, match="has 3 values but layer 'a' has 4 channels"):
        Direction("a", [1.0, 0.0, 0.0])({"a": torch.zeros(1, 4, 2, 2)})


def test_seeded_direction_is_a_reproducible_unit_buffer():
    act = torch.randn(1, 6, 3, 3)
    first, again, other = Direction("a", seed=3), Direction("a", seed=3), Direction("a", seed=4)
    assert first.vector is None
    for d in (first, again, other):
        d({"a": act})
    assert first.vector.shape == (6,)
    torch.testing.assert_close(first.vector.norm(), torch.tensor(1.0))
    torch.testing.assert_close(first.vector, again.vector)
    assert not torch.allclose(first.vector, other.vector)
    assert "vector" in first.state_dict()
    assert first.name == "direction:a:seed=3"


@pytest.mark.parametrize(
    "kwargs", [{}, {"vector": [1.0], "seed": 0}, {"vector": [], "seed": None}, {"seed": 0, "cossim_pow": -1}]
)
def test_direction_arguments_are_validated(kwargs):
    with pytest.raises(ConfigError):
        Direction("a", **kwargs)


def test_direction_neuron_reads_one_position():
    act = torch.randn(2, 3, 5, 6)
    vec = torch.tensor([1.0, 2.0, -1.0])
    torch.testing.assert_close(DirectionNeuron("a", vec)({"a": act}), -(act[:, :, 2, 3] * vec).sum(1))
    torch.testing.assert_close(DirectionNeuron("a", vec, x=1, y=4)({"a": act}), -(act[:, :, 4, 1] * vec).sum(1))
    with pytest.raises(ConfigError, match="x=6"):
        DirectionNeuron("a", vec, x=6, y=0)({"a": act})


def test_class_logit_by_index_reads_the_logits_layer():
    logits = torch.randn(2, 10)
    objective = ClassLogit(7)
    assert objective.layers() == {"logits"}
    torch.testing.assert_close(objective({"logits": logits}), -logits[:, 7])
    assert objective.name == "logit:7"
    assert ClassLogit(7, layer="fc").name == "logit:fc:7"


def test_class_labels_resolve_to_imagenet_indices():
    assert ClassLogit("espresso").index == 967
    assert ClassLogit("espresso").name == "logit:espresso"
    assert ClassLogit(["espresso", 3]).index == (967, 3)
    with pytest.raises(UnknownNameError, match="espreso"):
        ClassLogit("espreso")


def test_deepdream_is_minus_the_mean_square():
    act = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(DeepDream("a")({"a": act}), -(act**2).mean((1, 2, 3)))


def test_diversity_of_identical_images_exceeds_that_of_diverse_images():
    gen = torch.Generator().manual_seed(0)
    one = torch.rand(1, 8, 6, 6, generator=gen)
    same = one.expand(4, -1, -1, -1)
    diverse = torch.zeros(4, 8, 6, 6)
    for i in range(4):  # disjoint active channels: orthogonal Gram matrices
        diverse[i, 2 * i : 2 * i + 2] = torch.rand(2, 6, 6, generator=gen)
    div = Diversity("a")
    torch.testing.assert_close(div({"a": same}), torch.ones(4))
    torch.testing.assert_close(div({"a": diverse}), torch.zeros(4))
    mixed = torch.rand(4, 8, 6, 6, generator=gen)
    assert (div({"a": mixed}) < 1).all() and (div({"a": mixed}) > 0).all()


def test_diversity_matches_lucids_batch_value():
    act = torch.rand(3, 4, 5, 5)
    flat = act.reshape(3, 4, -1)
    grams = torch.nn.functional.normalize((flat @ flat.transpose(1, 2)).reshape(3, -1), dim=1)
    lucid = sum((grams[i] * grams[j]).sum() for i in range(3) for j in range(3) if i != j) / 3
    torch.testing.assert_close(Diversity("a")({"a": act}).mean() * (3 - 1), lucid)


def test_diversity_of_a_single_image_is_zero_and_backpropagates():
    act = torch.rand(1, 4, 3, 3, requires_grad=True)
    loss = Diversity("a")({"a": act})
    assert loss.shape == (1,) and loss.item() == 0
    loss.sum().backward()
    assert act.grad is not None and act.grad.abs().sum() == 0


def test_missing_and_misshapen_features_are_explained():
    with pytest.raises(UnknownNameError, match="'layer4'.*did you mean 'layer3'"):
        Channel("layer4", 0)({"layer3": torch.zeros(1, 2, 2, 2)})
    with pytest.raises(ConfigError, match=r"shape \(1, 5, 2\)"):
        Channel("a", 0)({"a": torch.zeros(1, 5, 2)})


@pytest.mark.parametrize("layer", ["", "a:b", 3])
def test_bad_layer_names_are_refused(layer):
    with pytest.raises(ConfigError):
        Channel(layer, 0)


def test_objectives_follow_the_features_device_and_dtype():
    act = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    for objective in (Channel("a", 1), Direction("a", [1.0, 2.0, 3.0]), Direction("a", seed=0), Diversity("a")):
        assert objective({"a": act}).dtype == torch.float64


def test_required_batch_reads_the_per_image_lists():
    assert required_batch(Channel("a", 3) + DeepDream("a")) is None
    assert required_batch(Channel("a", [3, 7, 9]) + 0.1 * Neuron("b", [1, 2, 3])) == 3
    assert required_batch(ClassLogit([1, 2])) == 2
    with pytest.raises(ConfigError, match=r"'channel:a:3\|7' \(2 images\)"):
        required_batch(Channel("a", [3, 7]) + ClassLogit([1, 2, 3]))


# --- alignment and channel interpolation (Lucid's interpolation frames) ---------------------------------
def test_alignment_is_lucids_sum_split_between_the_two_images_of_each_pair():
    act = torch.randn(6, 4, 3, 3, generator=torch.Generator().manual_seed(0))
    for ratio in (2.0, 5.0):
        loss = Alignment("a", decay_ratio=ratio)({"a": act})
        lucid = sum(
            ((act[i] - act[i + d]) ** 2).mean() / ratio**d for d in (1, 2, 3, 4) for i in range(6 - d)
        )  # lucid.optvis.objectives.alignment (its negative, which Lucid maximizes)
        torch.testing.assert_close(loss.sum(), lucid)
        # image 0 is in the pairs (0, 1), (0, 2), (0, 3), (0, 4): half of each pair's term
        torch.testing.assert_close(loss[0], sum(0.5 * ((act[0] - act[d]) ** 2).mean() / ratio**d for d in (1, 2, 3, 4)))
    assert Alignment("a").name == "alignment:a" and Alignment("a", 3).name == "alignment:a:3"
    assert Alignment("a").couples_images


def test_alignment_of_one_image_is_zero_and_identical_images_are_aligned():
    one = torch.randn(1, 4, 3, 3, requires_grad=True)
    loss = Alignment("a")({"a": one})
    assert loss.shape == (1,) and loss.item() == 0
    loss.sum().backward()  # connected to the graph, zero gradient
    assert (one.grad == 0).all()
    same = torch.randn(1, 4, 3, 3).expand(3, -1, -1, -1)
    assert (Alignment("a")({"a": same}) == 0).all()
    with pytest.raises(ConfigError, match="decay_ratio"):
        Alignment("a", 0)


def test_channel_interpolate_blends_from_the_first_channel_to_the_second():
    act1 = torch.randn(5, 6, 4, 4, generator=torch.Generator().manual_seed(0))
    act2 = torch.randn(5, 3, 2, 2, generator=torch.Generator().manual_seed(1))
    objective = ChannelInterpolate("a", 4, "b", 1)
    loss = objective({"a": act1, "b": act2})
    t = torch.arange(5) / 4
    torch.testing.assert_close(loss, -((1 - t) * act1[:, 4].mean((1, 2)) + t * act2[:, 1].mean((1, 2))))
    torch.testing.assert_close(loss[0], -act1[0, 4].mean())  # the first image: channel 4 of a alone
    torch.testing.assert_close(loss[-1], -act2[-1, 1].mean())  # the last: channel 1 of b alone
    assert objective.layers() == {"a", "b"} and objective.name == "channel_interpolate:a:4:b:1"
    assert objective.couples_images  # the loss depends on the image's place in the batch
    single = objective({"a": act1[:1], "b": act2[:1]})
    torch.testing.assert_close(single, -act1[:1, 4].mean((1, 2)))  # a batch of one: t = 0
    with pytest.raises(ConfigError, match="out of range"):
        ChannelInterpolate("a", 9, "b", 1)({"a": act1, "b": act2})


def test_coupling_objectives_keep_a_batch_from_being_split():
    from paramviz.objectives.base import images_are_independent

    assert not images_are_independent(Channel("a", 1) + ChannelInterpolate("a", 1, "a", 2))
    assert not images_are_independent(Channel("a", 1) + 10 * Alignment("a"))
    assert images_are_independent(Channel("a", 1) + Neuron("a", 2, token=3))


def test_neuron_token_names_and_checks():
    assert Neuron("a", 2, token=7).name == "neuron:a:2:token=7"
    act = torch.randn(2, 3, 4, 5)
    torch.testing.assert_close(Neuron("a", 2, token=7)({"a": act}), -act[:, 2, 1, 2])
    with pytest.raises(ConfigError, match="not both"):
        Neuron("a", 2, x=1, y=1, token=3)
    with pytest.raises(ConfigError, match="no spatial position"):
        Neuron("fc", 2, token=0)({"fc": torch.randn(2, 4)})
