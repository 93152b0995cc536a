"""Metrics on backbones and images: the layer robustness ratio R(f) (PGD)."""

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

__all__ = [
    "DEFAULT_EPS",
    "NORMS",
    "AttackResult",
    "LayerRobustness",
    "PGDSettings",
    "count_steps",
    "feature_distance",
    "layer_robustness",
    "mean_pairwise_distance",
    "pgd_feature_attack",
    "robustness_ratio",
]
