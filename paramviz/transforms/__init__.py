"""Random, differentiable, replayable image transforms (on kornia), for transformation robustness.

Build a stack with :func:`build_transforms` from a preset name or a spec string of comma-separated ops:

============================  ===================================================================
``pad:N``                     pad N pixels of constant 0.5 on every side (``pad:N:VALUE`` another
                              constant in [0, 1]; ``pad:N:reflect`` / ``pad:N:replicate``)
``jitter:D``                  shift each image by integers in [-D, D] per axis, same size, border
                              filled by reflection; ``jitter:D:crop`` is Lucid's random crop that
                              shrinks the image by D
``scale:LO-HI``               zoom uniform in [LO, HI] about the centre (same size);
                              ``scale:S1|S2|...`` picks from a set, ``scale:S`` is fixed
``rotate:MAX``                rotate uniform in [-MAX, MAX] degrees (counter-clockwise positive);
                              ``rotate:LO-HI`` a range, ``rotate:A1|A2|...`` a set
``noise:STD``                 add Gaussian noise
``blur:SIGMA``                Gaussian blur of SIGMA pixels (deterministic)
============================  ===================================================================

Presets (``TRANSFORM_PRESETS``): ``none`` (identity), ``jitter`` (``jitter:8``) and ``lucid`` (Lucid's
``standard_transforms``: pad 12 with 0.5, jitter 8, scale from {0.90, 0.92, ..., 1.10}, rotate from
``list(range(-10, 11)) + 5 * [0]`` degrees, jitter 4; the jitters are Lucid's crops). A preset name may also
be a token of a longer spec (``"lucid,noise:0.01"``). Sets pick uniformly; repeat a value to weight it.

Each image of the batch gets its own draw; ``TransformStack.last_draw`` replays exactly on another batch.
"""

from __future__ import annotations

from paramviz.transforms.ops import TRANSFORM_OPS, Blur, Jitter, Noise, Pad, Rotate, Scale, Transform
from paramviz.transforms.stack import (
    LUCID_ANGLES,
    LUCID_SCALES,
    TRANSFORM_PRESETS,
    TransformDraw,
    TransformStack,
    build_transforms,
    parse_transforms,
)

__all__ = [
    "LUCID_ANGLES",
    "LUCID_SCALES",
    "TRANSFORM_OPS",
    "TRANSFORM_PRESETS",
    "Blur",
    "Jitter",
    "Noise",
    "Pad",
    "Rotate",
    "Scale",
    "Transform",
    "TransformDraw",
    "TransformStack",
    "build_transforms",
    "parse_transforms",
]
