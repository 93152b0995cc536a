"""``transform_robustness``: does a visualization still excite its unit after a few pixels of jitter?

For a visualize run with objective ``O``, let ``O_act`` be its **activation part**: the weighted sum of the
terms that read network layers (every term except those that read the image itself under
:data:`~paramviz.objectives.penalties.IMAGE_KEYS`: the ``l1``, ``l2`` and ``tv`` pixel penalties and
penalties on the alpha channel). Its
activation is ``a(x) = -O_act(x)`` (objectives are losses). The metric of image ``b`` is::

    transform_robustness_b = mean_{k=1..16} a(T_k(x))_b / a(x)_b

where ``T_1..T_16`` are draws of the ``lucid`` transform stack (pad 12, jitter 8, scale 0.9-1.1, rotate
±10°, jitter 4) from a private seed (``context.seed``): the same draws for every run with that seed, and
torch's global RNG is left as it was. Copy ``k`` of the whole batch goes through the network together (each
image with its own draw), so per-image objectives (``channel:L:3|7|9``, ``@I``) and ``diversity`` see the
same batch layout as during optimization.

Adversarial patterns collapse under the jitter (near 0); robust visualizations stay near 1 (values above 1
are possible: a copy may excite the unit more than the original). **Degenerate case**: an image whose
activation on the original is not positive (``a(x)_b <= 0``: the run failed to excite the unit, or a
``@I`` term does not act on that image) has no meaningful ratio and gets 0.
"""

from __future__ import annotations

import torch

from paramviz.errors import ConfigError
from paramviz.metrics.registry import Metric, MetricContext, module_device, register_metric
from paramviz.objectives.base import Objective, WeightedSum
from paramviz.objectives.penalties import IMAGE_KEYS
from paramviz.transforms import build_transforms

#: Transformed copies per image.
COPIES = 16

#: The transform stack the copies are drawn from.
TRANSFORMS = "lucid"


def activation_part(objective: Objective) -> Objective | None:
    """The terms of ``objective`` that read network layers (not the image), or ``None`` if there are none."""
    terms = [(w, leaf) for w, leaf in objective.leaves() if w != 0 and not leaf.layers() & IMAGE_KEYS]
    return WeightedSum(terms) if terms else None


def _activation(objective: Objective, backbone: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    features = backbone(x, sorted(objective.layers()))
    return -objective(features).detach().double().cpu()


def transform_robustness(
    images: torch.Tensor,
    objective: Objective,
    backbone: torch.nn.Module,
    *,
    copies: int = COPIES,
    transforms: str = TRANSFORMS,
    seed: int = 0,
) -> torch.Tensor:
    """Mean activation of ``copies`` transformed copies over the activation of the original, (B,) float64.

    Args:
        images: (B, 3, H, W) in [0, 1]; moved to the backbone's device.
        objective: The run's full objective; only its activation part is evaluated.
        backbone: The network that was optimized.
        copies: Transformed copies per image.
        transforms: Transform spec or preset the copies are drawn from.
        seed: Seed of the private draws (torch's global RNG is restored afterwards).

    Raises:
        ConfigError: The objective has no term that reads a network layer.
    """
    act = activation_part(objective)
    if act is None:
        raise ConfigError(
            f"transform_robustness needs an objective with a term that reads a network layer; "
            f"{objective.name!r} only reads the image"
        )
    backbone.validate(sorted(act.layers()))
    device = module_device(backbone)
    act.to(device)
    x = images.detach().to(device)
    base = _activation(act, backbone, x)
    stack = build_transforms(transforms).to(device)
    total = torch.zeros_like(base)
    forked = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked):
        torch.manual_seed(seed)
        for _ in range(copies):
            total += _activation(act, backbone, stack(x))
    ratio = total / copies / base.where(base > 0, torch.ones_like(base))
    return torch.where(base > 0, ratio, torch.zeros_like(ratio))


def _applies(context: MetricContext) -> bool:
    if context.objective is None or context.backbone is None:
        return False
    return activation_part(context.objective) is not None


def _compute(images: torch.Tensor, context: MetricContext) -> torch.Tensor:
    context.backbone.to(context.device)
    return transform_robustness(images, context.objective, context.backbone, seed=context.seed)


register_metric(
    Metric(
        "transform_robustness",
        frozenset({"visualize"}),
        _compute,
        applies=_applies,
        needs="transform_robustness needs the run's backbone and an objective with a term that reads a network layer",
        description="activation of 16 lucid-transformed copies over the original's (robust ~1, adversarial ~0)",
    )
)
