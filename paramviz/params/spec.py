"""``ParamSpec`` (the config of a parameterization) and :func:`build_param`."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence

import torch

from paramviz.config import ConfigBase, check_seed
from paramviz.errors import ConfigError
from paramviz.params.base import PARAMS, ImageParam, check_batch, check_size
from paramviz.params.color import SQUASHES
from paramviz.params.fourier import check_decay_power


@dataclasses.dataclass(frozen=True)
class ParamSpec(ConfigBase):
    """How the image is parameterized.

    Args:
        name: Registered parameterization (``fourier`` or ``pixel``).
        decorrelate: Lucid's colour decorrelation.
        squash: Map into [0, 1]: ``sigmoid`` or ``clamp``.
        decay_power: Fourier spectrum decay exponent (ignored by parameterizations that have none, so a sweep
            over ``name`` can keep one value).
    """

    name: str = "fourier"
    decorrelate: bool = True
    squash: str = "sigmoid"
    decay_power: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise ConfigError(f"param.name must be a string, got {self.name!r}; e.g. 'fourier'")
        PARAMS.get(self.name)  # UnknownNameError with close matches
        if not isinstance(self.squash, str):
            raise ConfigError(f"param.squash must be a string, got {self.squash!r}; e.g. 'sigmoid'")
        SQUASHES.get(self.squash)
        if not isinstance(self.decorrelate, bool):
            raise ConfigError(f"param.decorrelate must be true or false, got {self.decorrelate!r}")
        try:
            object.__setattr__(self, "decay_power", check_decay_power(self.decay_power))
        except ConfigError as exc:
            raise ConfigError(f"param.{exc}") from None


def build_param(
    spec: ParamSpec | str,
    size: int | Sequence[int],
    batch: int = 1,
    seed: int | None = None,
    init: torch.Tensor | None = None,
) -> ImageParam:
    """Build the parameterization described by ``spec``.

    Args:
        spec: A :class:`ParamSpec` (or just a registry name, with the other fields at their defaults).
        size: ``(H, W)`` of the images (an int means a square).
        batch: Number of images.
        seed: Seed of a private ``torch.Generator`` for the initial noise; ``None`` uses torch's global RNG.
        init: Optional start image, (1 | B, 3, H, W) in [0, 1] (see :meth:`ImageParam.from_image`).

    Returns:
        The parameterization, on the CPU (move it with ``.to(device)``).
    """
    if isinstance(spec, str):
        spec = ParamSpec(name=spec)
    if not isinstance(spec, ParamSpec):
        raise ConfigError(f"expected a ParamSpec or a parameterization name, got {type(spec).__name__}")
    size = check_size(size)
    batch = check_batch(batch)
    generator = None
    if seed is not None:
        check_seed(seed)
        generator = torch.Generator().manual_seed(seed)
    cls = PARAMS.get(spec.name)
    kwargs: dict[str, object] = {"decorrelate": spec.decorrelate, "squash": spec.squash, "generator": generator}
    if "decay_power" in inspect.signature(cls).parameters:
        kwargs["decay_power"] = spec.decay_power
    param = cls(size, batch, **kwargs)
    if init is not None:
        param.from_image(init)
    return param
