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
from paramviz.params.cppn import check_positive_int
from paramviz.params.fourier import check_decay_power
from paramviz.params.laplacian import check_levels


@dataclasses.dataclass(frozen=True)
class ParamSpec(ConfigBase):
    """How the image is parameterized.

    ``decay_power``, ``levels``, ``hidden_channels``, ``num_layers`` and ``spectrum`` belong to one
    parameterization each and are ignored by the others, so a sweep over ``name`` can keep one value.

    Args:
        name: Registered parameterization (``pixel``, ``fourier``, ``laplacian``, ``cppn``, ``maco``).
        decorrelate: Lucid's colour decorrelation.
        squash: Map into [0, 1]: ``sigmoid`` or ``clamp``.
        decay_power: ``fourier``: spectrum decay exponent.
        alpha: Add a transparency channel: the image is RGBA, composited over a random background every
            step before the transforms (feature visualization only).
        levels: ``laplacian``: number of pyramid levels (Lucid: 4).
        hidden_channels: ``cppn``: width of the hidden layers (Lucid: 24).
        num_layers: ``cppn``: number of hidden layers (Lucid: 8).
        spectrum: ``maco``: folder of natural images whose mean magnitude spectrum is used; empty: the
            scikit-image sample photos (computed offline, cached on disk).
    """

    name: str = "fourier"
    decorrelate: bool = True
    squash: str = "sigmoid"
    decay_power: float = 1.0
    alpha: bool = False
    levels: int = 4
    hidden_channels: int = 24
    num_layers: int = 8
    spectrum: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise ConfigError(f"param.name must be a string, got {self.name!r}; e.g. 'fourier'")
        PARAMS.get(self.name)  # UnknownNameError with close matches
        if not isinstance(self.squash, str):
            raise ConfigError(f"param.squash must be a string, got {self.squash!r}; e.g. 'sigmoid'")
        SQUASHES.get(self.squash)
        for name in ("decorrelate", "alpha"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"param.{name} must be true or false, got {getattr(self, name)!r}")
        if not isinstance(self.spectrum, str):
            raise ConfigError(f"param.spectrum must be a folder path (a string), got {self.spectrum!r}")
        try:
            object.__setattr__(self, "decay_power", check_decay_power(self.decay_power))
            check_levels(self.levels)
            check_positive_int("hidden_channels", self.hidden_channels, "Lucid uses 24")
            check_positive_int("num_layers", self.num_layers, "Lucid uses 8")
        except ConfigError as exc:
            raise ConfigError(f"param.{exc}") from None

    @property
    def param_class(self) -> type[ImageParam]:
        """The registered class of :attr:`name` (its ``default_lr``, ``default_optimizer``, ``inverse``...)."""
        return PARAMS.get(self.name)


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
    accepted = inspect.signature(cls).parameters
    kwargs: dict[str, object] = {"generator": generator}
    for field in dataclasses.fields(spec):
        if field.name != "name" and field.name in accepted:  # each class takes the fields it has
            kwargs[field.name] = getattr(spec, field.name)
    param = cls(size, batch, **kwargs)
    if init is not None:
        param.from_image(init)
    return param
