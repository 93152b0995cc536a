"""Objectives: what an optimized image should do to a network's activations.

Convention, stated once: **every objective returns a loss per image, shape (B,), lower is better.**
Objectives combine with ``+``, ``-``, scalar ``*`` and ``/`` into one flat :class:`WeightedSum`.

- :mod:`.base`: :class:`Objective` and its algebra.
- :mod:`.activation`: channel, neuron, direction, class logit, DeepDream, diversity, alignment, channel
  interpolation; the :data:`OBJECTIVES` registry.
- :mod:`.penalties`: L1, L2, total variation and blur of the image (read under :data:`INPUT_KEY`).
- :mod:`.reference`: objectives driven by a given image: ``input_diff``, feature ``inversion``,
  ``caricature`` (attached to the render loop through :meth:`Objective.attach`).
- :mod:`.spec`: the compact spec strings of the CLI (:func:`parse_objective`, :data:`SPEC_HELP`).
- :mod:`.style`: content and style losses (Gram, Wasserstein-2, SWAG) and their builders.
"""

from paramviz.objectives.activation import (
    OBJECTIVES,
    ActivationObjective,
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
from paramviz.objectives.base import Objective, RenderContext, WeightedSum, total_weight_is_zero
from paramviz.objectives.penalties import (
    ALPHA_KEY,
    IMAGE_KEYS,
    INPUT_KEY,
    L1,
    L2,
    BlurPenalty,
    Penalty,
    TotalVariation,
)
from paramviz.objectives.reference import Caricature, ImageTarget, InputDiff, Inversion
from paramviz.objectives.spec import SPEC_HELP, parse_objective, parse_objectives
from paramviz.objectives.style import (
    GRAM_NORMALIZATIONS,
    STYLE_LOSSES,
    TARGET_SUFFIX,
    W2_REDUCTIONS,
    ContentLoss,
    GramStyleLoss,
    StyleLoss,
    W2StyleLoss,
    content_objective,
    extract_features,
    gaussian_w2,
    gram_matrix,
    style_objective,
    swag,
)

__all__ = [
    "GRAM_NORMALIZATIONS",
    "ALPHA_KEY",
    "IMAGE_KEYS",
    "INPUT_KEY",
    "L1",
    "L2",
    "OBJECTIVES",
    "SPEC_HELP",
    "STYLE_LOSSES",
    "TARGET_SUFFIX",
    "W2_REDUCTIONS",
    "ActivationObjective",
    "Alignment",
    "BlurPenalty",
    "Caricature",
    "Channel",
    "ChannelInterpolate",
    "ClassLogit",
    "ContentLoss",
    "DeepDream",
    "Direction",
    "DirectionNeuron",
    "Diversity",
    "GramStyleLoss",
    "ImageTarget",
    "InputDiff",
    "Inversion",
    "Neuron",
    "Objective",
    "Penalty",
    "RenderContext",
    "StyleLoss",
    "TotalVariation",
    "W2StyleLoss",
    "WeightedSum",
    "content_objective",
    "extract_features",
    "gaussian_w2",
    "gram_matrix",
    "parse_objective",
    "parse_objectives",
    "required_batch",
    "style_objective",
    "swag",
    "total_weight_is_zero",
]
