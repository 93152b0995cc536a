"""paramviz: differentiable image parameterizations for feature visualization and style transfer.

The public API: parameterizations, transform stacks, backbones, objectives, the render loop and the tasks.
Submodules hold the full API of each part (``paramviz.params``, ``paramviz.objectives``, ...). The render
loop is ``paramviz.render.render`` (not re-exported here, so that ``import paramviz.render`` is the module).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it. Imported on first use, so ``import paramviz`` (and
#: ``paramviz --help``) does not import torch.
_EXPORTS: dict[str, str] = {
    "BACKBONES": "paramviz.backbones",
    "Backbone": "paramviz.backbones",
    "build_backbone": "paramviz.backbones",
    "class_index": "paramviz.backbones",
    "list_backbones": "paramviz.backbones",
    "register_backbone": "paramviz.backbones",
    "CompositeBackbone": "paramviz.backbones.composite",
    "CheckpointError": "paramviz.errors",
    "ConfigError": "paramviz.errors",
    "ImageError": "paramviz.errors",
    "NonFiniteLossError": "paramviz.errors",
    "OutputExistsError": "paramviz.errors",
    "ParamvizError": "paramviz.errors",
    "SpecError": "paramviz.errors",
    "UnknownNameError": "paramviz.errors",
    "UnsafeCheckpointError": "paramviz.errors",
    "WeightsError": "paramviz.errors",
    "load_image": "paramviz.io",
    "save_image": "paramviz.io",
    "PGDSettings": "paramviz.metrics",
    "layer_robustness": "paramviz.metrics",
    "robustness_ratio": "paramviz.metrics",
    "L1": "paramviz.objectives",
    "L2": "paramviz.objectives",
    "OBJECTIVES": "paramviz.objectives",
    "Channel": "paramviz.objectives",
    "ClassLogit": "paramviz.objectives",
    "DeepDream": "paramviz.objectives",
    "Direction": "paramviz.objectives",
    "Diversity": "paramviz.objectives",
    "Neuron": "paramviz.objectives",
    "Objective": "paramviz.objectives",
    "TotalVariation": "paramviz.objectives",
    "parse_objective": "paramviz.objectives",
    "parse_objectives": "paramviz.objectives",
    "ContentLoss": "paramviz.objectives.style",
    "GramStyleLoss": "paramviz.objectives.style",
    "W2StyleLoss": "paramviz.objectives.style",
    "content_objective": "paramviz.objectives.style",
    "style_objective": "paramviz.objectives.style",
    "PARAMS": "paramviz.params",
    "FourierParam": "paramviz.params",
    "ImageParam": "paramviz.params",
    "ParamSpec": "paramviz.params",
    "PixelParam": "paramviz.params",
    "build_param": "paramviz.params",
    "OPTIMIZERS": "paramviz.render",
    "RenderResult": "paramviz.render",
    "StepRecord": "paramviz.render",
    "RobustnessConfig": "paramviz.tasks.robustness",
    "compute_robustness": "paramviz.tasks.robustness",
    "run_robustness": "paramviz.tasks.robustness",
    "StyleConfig": "paramviz.tasks.stylize",
    "StyleResult": "paramviz.tasks.stylize",
    "run_style": "paramviz.tasks.stylize",
    "stylize": "paramviz.tasks.stylize",
    "VisualizeConfig": "paramviz.tasks.visualize",
    "run_visualize": "paramviz.tasks.visualize",
    "visualize": "paramviz.tasks.visualize",
    "TRANSFORM_PRESETS": "paramviz.transforms",
    "TransformStack": "paramviz.transforms",
    "build_transforms": "paramviz.transforms",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'paramviz' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # next time without __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
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
