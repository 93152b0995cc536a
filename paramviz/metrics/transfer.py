"""``transfer``: does a class visualization convince other real networks than the one it was optimized on?

For a visualize run whose objective has class-logit terms (:class:`~paramviz.objectives.activation.ClassLogit`
on the ``logits`` layer, i.e. ``logit:LABEL``), the target classes of image ``b`` are those of the terms with a
positive weight that act on it (``logit:285`` acts on every image, ``logit:285|967`` gives image ``b`` the
``b``-th class, ``logit:285@1`` acts on image 1 only). On each transfer network ``N`` (by default the bundled
EfficientNet-Lite1 and Lite2)::

    p_N(b) = mean over the target classes c of image b of softmax(N(resize(x_b)))[c]

where ``resize`` is a bilinear, antialiased resize of the whole image to ``N``'s native input size (240 px for
Lite1, 260 px for Lite2; a non-square image is squeezed to a square, as the backbone tests do). The metric is
the mean of ``p_N(b)`` over the networks; ``extra`` holds each network's batch mean as ``transfer:<name>``.
In [0, 1]; higher means the image carries the class in a way other networks see too.

Networks with the registry name of the optimized backbone are left out (a network does not transfer to
itself); the metric applies only when at least one remains. An image that no class-logit term acts on gets 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from paramviz.errors import ConfigError
from paramviz.metrics.registry import Metric, MetricContext, module_device, register_metric
from paramviz.objectives.activation import ClassLogit
from paramviz.objectives.base import Objective

#: The layer a class-logit term must read for ``transfer`` to apply.
LOGITS = "logits"


def class_logit_terms(objective: Objective) -> list[ClassLogit]:
    """The positive-weight :class:`ClassLogit` terms of ``objective`` that read the ``logits`` layer."""
    return [leaf for w, leaf in objective.leaves() if w > 0 and isinstance(leaf, ClassLogit) and leaf.layer == LOGITS]


def target_classes(objective: Objective, batch: int) -> list[list[int]]:
    """The target classes of each image of a batch of ``batch``, from the objective's class-logit terms.

    Raises:
        ConfigError: A per-image class list whose length is not ``batch``.
    """
    targets: list[list[int]] = [[] for _ in range(batch)]
    for term in class_logit_terms(objective):
        if isinstance(term.index, tuple):
            if len(term.index) != batch:
                raise ConfigError(
                    f"objective term {term.name!r} gives {len(term.index)} classes (one per image) but the batch "
                    f"has {batch} images"
                )
            for b, index in enumerate(term.index):
                targets[b].append(int(index))
        else:
            for b in range(batch):
                if term.batch is None or term.batch == b:
                    targets[b].append(int(term.index))
    return targets


def class_probability(images: torch.Tensor, targets: Sequence[Sequence[int]], network: torch.nn.Module) -> torch.Tensor:
    """Mean softmax probability of each image's target classes under ``network``, (B,) float64.

    The images are resized to ``network.input_size`` (if it has one). An image without targets gets 0.

    Raises:
        ConfigError: A target class outside the network's classes.
    """
    device = module_device(network)
    x = images.detach().to(device)
    size = getattr(network, "input_size", None)
    if size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    logits = network(x, [LOGITS])[LOGITS]
    if logits.dim() == 4:
        logits = logits.flatten(2).mean(2)
    probs = logits.double().softmax(1).cpu()
    classes = probs.shape[1]
    out = torch.zeros(probs.shape[0], dtype=torch.float64)
    for b, wanted in enumerate(targets):
        bad = [c for c in wanted if c >= classes]
        if bad:
            raise ConfigError(
                f"transfer: class {bad[0]} is out of range for network {getattr(network, 'name', '?')!r}, which has "
                f"{classes} classes"
            )
        if wanted:
            out[b] = probs[b, list(wanted)].mean()
    return out


def transfer_networks(context: MetricContext) -> list[str]:
    """The context's transfer networks, less those with the optimized backbone's name."""
    skip = context.optimized_names()
    return [name for name in dict.fromkeys(context.transfer_networks) if name not in skip]


def _applies(context: MetricContext) -> bool:
    if context.objective is None or not class_logit_terms(context.objective):
        return False
    return bool(transfer_networks(context))


def _compute(images: torch.Tensor, context: MetricContext) -> torch.Tensor:
    targets = target_classes(context.objective, int(images.shape[0]))
    values = []
    for name in transfer_networks(context):
        value = class_probability(images, targets, context.network(name))
        context.record(f"transfer:{name}", float(value.mean()))
        values.append(value)
    return torch.stack(values).mean(0)


register_metric(
    Metric(
        "transfer",
        frozenset({"visualize"}),
        _compute,
        applies=_applies,
        needs=(
            "transfer needs a class-logit objective (logit:LABEL) and a transfer network other than the optimized "
            "backbone (MetricContext.transfer_networks)"
        ),
        description="softmax probability of the target class under other real networks (Lite1, Lite2)",
    )
)
