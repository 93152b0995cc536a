"""One example per registered objective kind, for the registry-parametrized contract tests.

Built for the ``tiny_backbone`` fixture (tests/conftest.py: conv1 (B,8,H,W), conv2 (B,16,H/2,W/2), conv3
(B,16,H/4,W/4), logits (B,10)). A new plugin is covered by the contract tests (tests/objectives/test_activation.py,
tests/test_render.py) once it has an entry here.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from paramviz.objectives.activation import (
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
from paramviz.objectives.base import Objective
from paramviz.objectives.penalties import L1, L2, BlurPenalty, TotalVariation
from paramviz.objectives.reference import Caricature, InputDiff, Inversion

EXAMPLES: dict[str, Callable[[], Objective]] = {
    "channel": lambda: Channel("conv3", 5),
    "neuron": lambda: Neuron("conv3", 5),
    "direction": lambda: Direction("conv3", seed=0, cossim_pow=1.0),
    "direction_neuron": lambda: DirectionNeuron("conv2", seed=1),
    "logit": lambda: ClassLogit(3),
    "deepdream": lambda: DeepDream("conv2"),
    "diversity": lambda: Diversity("conv2"),
    "l1": lambda: L1(0.5),
    "l2": lambda: L2(0.25),
    "tv": lambda: TotalVariation(),
    "alignment": lambda: Alignment("conv2"),
    "channel_interpolate": lambda: ChannelInterpolate("conv2", 3, "conv3", 5),
    "blur": lambda: BlurPenalty(1.0),
    "input_diff": lambda: InputDiff(torch.rand(1, 3, 20, 12, generator=torch.Generator().manual_seed(0))),
    "inversion": lambda: Inversion("conv2", target=torch.rand(1, 16, 8, 8, generator=torch.Generator().manual_seed(0))),
    "caricature": lambda: Caricature(
        "conv3", target=torch.rand(1, 16, 4, 4, generator=torch.Generator().manual_seed(0)), power=1.5
    ),
}
