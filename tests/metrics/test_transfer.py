"""transfer: class probability under other real networks (the bundled EfficientNet-Lite1 and Lite2)."""

from __future__ import annotations

import pytest
import torch

from paramviz.errors import ConfigError
from paramviz.metrics import MetricContext, compute_metrics
from paramviz.metrics.transfer import class_probability, target_classes, transfer_networks
from paramviz.objectives import Channel, ClassLogit, TotalVariation

CAT, ESPRESSO = 285, 967


def test_target_classes_follow_the_class_logit_terms() -> None:
    objective = ClassLogit(3) + ClassLogit(5, batch=1) + 0.1 * TotalVariation() + Channel("stage3", 2)
    assert target_classes(objective, 3) == [[3], [3, 5], [3]]
    assert target_classes(ClassLogit([7, 9]) - ClassLogit(4), 2) == [[7], [9]]  # negative weight: not a target
    assert target_classes(ClassLogit(3, layer="head"), 2) == [[], []]  # not the logits layer
    assert target_classes(ClassLogit("espresso"), 1) == [[ESPRESSO]]
    with pytest.raises(ConfigError, match="gives 2 classes .* batch has 3"):
        target_classes(ClassLogit([1, 2]), 3)


def test_networks_named_like_the_optimized_one_are_left_out(tiny_backbone, lite_cache) -> None:
    lite1 = lite_cache["efficientnet_lite1"]
    context = MetricContext("visualize", objective=ClassLogit(CAT), backbone=lite1, cache=lite_cache)
    assert transfer_networks(context) == ["efficientnet_lite2"]
    values = compute_metrics(torch.rand(1, 3, 32, 32), context, ["transfer"])
    assert set(values.extra) == {"transfer:efficientnet_lite2"}
    alone = MetricContext(
        "visualize", objective=ClassLogit(CAT), backbone=lite1, transfer_networks=("efficientnet_lite1",)
    )
    with pytest.raises(ConfigError, match="transfer needs a class-logit objective .* other than the optimized"):
        compute_metrics(torch.rand(1, 3, 32, 32), alone, ["transfer"])
    no_logit = MetricContext("visualize", objective=Channel("stage1", 0), backbone=tiny_backbone)
    assert "transfer" in compute_metrics(torch.rand(1, 3, 32, 32), no_logit).skipped


@pytest.mark.slow
def test_a_real_photo_transfers_and_noise_does_not(photo, tiny_backbone, lite_cache) -> None:
    noise = torch.rand(1, 3, 200, 200, generator=torch.Generator().manual_seed(0))
    images = torch.cat([photo("chelsea", (200, 200)), noise])
    context = MetricContext("visualize", objective=ClassLogit(CAT), backbone=tiny_backbone, cache=lite_cache)
    values = compute_metrics(images, context, ["transfer"])
    photo_p, noise_p = values.per_image["transfer"]
    assert photo_p > 0.5 and noise_p < 0.05
    for name in ("efficientnet_lite1", "efficientnet_lite2"):
        single = class_probability(images, [[CAT], [CAT]], lite_cache[name])
        assert single[0] > 0.5 and single[1] < 0.05
        assert values.extra[f"transfer:{name}"] == pytest.approx(single.mean().item())
    assert values.mean["transfer"] == pytest.approx((photo_p + noise_p) / 2)


@pytest.mark.slow
def test_per_image_classes(photo, tiny_backbone, lite_cache) -> None:
    images = torch.cat([photo("chelsea", (200, 200)), photo("coffee", (200, 200))])
    right = MetricContext("visualize", objective=ClassLogit([CAT, ESPRESSO]), backbone=tiny_backbone, cache=lite_cache)
    wrong = MetricContext("visualize", objective=ClassLogit([ESPRESSO, CAT]), backbone=tiny_backbone, cache=lite_cache)
    assert min(compute_metrics(images, right, ["transfer"]).per_image["transfer"]) > 0.4
    assert max(compute_metrics(images, wrong, ["transfer"]).per_image["transfer"]) < 0.01
    only_second = ClassLogit(ESPRESSO, batch=1)
    context = MetricContext("visualize", objective=only_second, backbone=tiny_backbone, cache=lite_cache)
    first, second = compute_metrics(images, context, ["transfer"]).per_image["transfer"]
    assert first == 0.0 and second > 0.5


def test_class_outside_the_network_is_refused(lite_cache) -> None:
    with pytest.raises(ConfigError, match="class 1000 is out of range .* 1000 classes"):
        class_probability(torch.rand(1, 3, 32, 32), [[1000]], lite_cache["efficientnet_lite1"])
