"""Metrics on backbones and images: the layer robustness ratio R(f) (PGD), and image metrics for ablations."""

# Importing the metric modules registers their metrics in METRICS (pixel statistics first).
from paramviz.metrics import spectral, style, transfer, transform
from paramviz.metrics.registry import (
    METRIC_TASKS,
    METRICS,
    Metric,
    MetricContext,
    MetricValues,
    compute_metrics,
    metric_names,
    register_metric,
)
from paramviz.metrics.robustness import (
    DEFAULT_EPS,
    NORMS,
    AttackResult,
    LayerRobustness,
    PGDSettings,
    count_steps,
    feature_distance,
    layer_robustness,
    mean_pairwise_distance,
    pgd_feature_attack,
    robustness_ratio,
)
from paramviz.metrics.spectral import checkerboard, hf_energy, spectral_slope, total_variation
from paramviz.metrics.style import content_distance, referee_preset, ssim_content, style_distance
from paramviz.metrics.transfer import class_probability, target_classes
from paramviz.metrics.transform import activation_part, transform_robustness

__all__ = [
    "DEFAULT_EPS",
    "METRICS",
    "METRIC_TASKS",
    "NORMS",
    "AttackResult",
    "LayerRobustness",
    "Metric",
    "MetricContext",
    "MetricValues",
    "PGDSettings",
    "activation_part",
    "checkerboard",
    "class_probability",
    "compute_metrics",
    "content_distance",
    "count_steps",
    "feature_distance",
    "hf_energy",
    "layer_robustness",
    "mean_pairwise_distance",
    "metric_names",
    "pgd_feature_attack",
    "referee_preset",
    "register_metric",
    "robustness_ratio",
    "spectral",
    "spectral_slope",
    "ssim_content",
    "style",
    "style_distance",
    "target_classes",
    "total_variation",
    "transfer",
    "transform",
    "transform_robustness",
]
