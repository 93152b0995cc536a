"""paramviz: differentiable image parameterizations for feature visualization and style transfer.

The public API: parameterizations, transform stacks, backbones, objectives, the render loop and the tasks.
Submodules hold the full API of each part (``paramviz.params``, ``paramviz.objectives``, ...). The render
loop is ``paramviz.render.render`` (not re-exported here, so that ``import paramviz.render`` is the module).
"""

from paramviz.backbones import BACKBONES, Backbone, build_backbone, class_index, list_backbones, register_backbone
from paramviz.backbones.composite import CompositeBackbone
from paramviz.errors import (
    CheckpointError,
    ConfigError,
    ImageError,
    NonFiniteLossError,
    OutputExistsError,
    ParamvizError,
    SpecError,
    UnknownNameError,
    UnsafeCheckpointError,
    WeightsError,
)
from paramviz.io import load_image, save_image
from paramviz.metrics import PGDSettings, layer_robustness, robustness_ratio
from paramviz.objectives import (
    L1,
    L2,
    OBJECTIVES,
    Channel,
    ClassLogit,
    DeepDream,
    Direction,
    Diversity,
    Neuron,
    Objective,
    TotalVariation,
    parse_objective,
    parse_objectives,
)
from paramviz.objectives.style import ContentLoss, GramStyleLoss, W2StyleLoss, content_objective, style_objective
from paramviz.params import PARAMS, FourierParam, ImageParam, ParamSpec, PixelParam, build_param
from paramviz.render import OPTIMIZERS, RenderResult, StepRecord
from paramviz.tasks.robustness import RobustnessConfig, compute_robustness, run_robustness
from paramviz.tasks.stylize import StyleConfig, StyleResult, run_style, stylize
from paramviz.tasks.visualize import VisualizeConfig, run_visualize, visualize
from paramviz.transforms import TRANSFORM_PRESETS, TransformStack, build_transforms

__version__ = "0.1.0"

__all__ = [
    "BACKBONES",
    "L1",
    "L2",
    "OBJECTIVES",
    "OPTIMIZERS",
    "PARAMS",
    "TRANSFORM_PRESETS",
    "Backbone",
    "Channel",
    "CompositeBackbone",
    "ContentLoss",
    "GramStyleLoss",
    "StyleConfig",
    "StyleResult",
    "W2StyleLoss",
    "content_objective",
    "run_style",
    "style_objective",
    "stylize",
    "CheckpointError",
    "ClassLogit",
    "ConfigError",
    "DeepDream",
    "Direction",
    "Diversity",
    "FourierParam",
    "ImageError",
    "ImageParam",
    "Neuron",
    "NonFiniteLossError",
    "Objective",
    "OutputExistsError",
    "PGDSettings",
    "ParamSpec",
    "ParamvizError",
    "PixelParam",
    "RenderResult",
    "RobustnessConfig",
    "SpecError",
    "StepRecord",
    "TotalVariation",
    "TransformStack",
    "UnknownNameError",
    "UnsafeCheckpointError",
    "VisualizeConfig",
    "WeightsError",
    "build_backbone",
    "build_param",
    "build_transforms",
    "class_index",
    "compute_robustness",
    "layer_robustness",
    "list_backbones",
    "load_image",
    "parse_objective",
    "parse_objectives",
    "register_backbone",
    "robustness_ratio",
    "run_robustness",
    "run_visualize",
    "save_image",
    "visualize",
]
