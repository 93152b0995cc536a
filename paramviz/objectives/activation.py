"""Activation objectives for feature visualization: channel, neuron, direction, class logit, DeepDream, diversity.

All objectives follow the package convention: **the value is a loss per image, shape (B,), lower is
better**, so maximizing an activation is minimizing its negative. Features are ``{layer name: tensor}`` with
conv layers shaped (B, C, H, W) and linear layers shaped (B, C). Transformer layers arrive in the same
layout: the :class:`~paramviz.backbones.base.Backbone` lays a token sequence (B, N, C) out on its patch grid
as (B, C, h, w) without the class/register tokens, and permutes channels-last (B, H, W, C) maps
(:mod:`paramviz.backbones.layout`). So ``channel`` on a ViT block is the channel's mean over the patch
tokens (the class and register tokens are not part of it) and ``neuron`` picks one patch by its (x, y)
position on the grid or by its token index (``token=``, counting patch tokens in row-major order from 0).

Per-image targeting (Lucid's ``batch=`` argument): ``batch=i`` makes only image ``i`` of the batch feel the
objective; the other images get loss 0 (and zero gradient). :class:`Channel`, :class:`Neuron` and
:class:`ClassLogit` also accept a list of indices, one per image: ``Channel("layer3", [3, 7, 9])`` drives
image 0 towards channel 3, image 1 towards channel 7 and image 2 towards channel 9 in one batch.

Indices and positions are checked against the feature shapes when the objective is evaluated (the shapes
are not known before); a bad index raises :class:`~paramviz.errors.ConfigError` naming the layer, the index
and the valid range.

:data:`OBJECTIVES` maps the objective kinds (``channel``, ``neuron``, ...) to their classes; the spec
parser (:mod:`paramviz.objectives.spec`) and the CLI's ``--help`` read it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Integral, Real

import torch
from torch import nn

from paramviz.config import check_seed
from paramviz.errors import ConfigError, UnknownNameError
from paramviz.objectives.base import Objective
from paramviz.registry import Registry

OBJECTIVES: Registry[type[Objective]] = Registry(
    "objective", hint="see `paramviz visualize --help` for the objective spec forms"
)
"""Objective kinds by name (``channel``, ``neuron``, ``direction``, ``logit``, ...) -> constructor."""

Index = int | Sequence[int]

_COSSIM_EPS = 1e-4  # Lucid's _dot_cossim epsilon, added to both magnitudes
_COSSIM_FLOOR = 0.1  # Lucid floors the cosine similarity at 0.1 before raising it to cossim_pow
ALIGNMENT_MAX_OFFSET = 4  # Lucid's alignment compares images up to 4 apart in the batch


# --- shared helpers ------------------------------------------------------------------------------
def get_feature(features: Mapping[str, torch.Tensor], layer: str, objective: str) -> torch.Tensor:
    """Return ``features[layer]`` checked to be (B, C, H, W) or (B, C).

    Raises:
        UnknownNameError: ``layer`` is not among the features (the backbone was not asked for it).
        ConfigError: the tensor has another number of dimensions.
    """
    if layer not in features:
        raise UnknownNameError(
            f"layer in the features passed to objective {objective!r}",
            layer,
            features.keys(),
            "pass the features of every name in objective.layers()",
        )
    act = features[layer]
    if act.dim() not in (2, 4):
        raise ConfigError(
            f"objective {objective!r}: layer {layer!r} has shape {tuple(act.shape)}; expected (B, C, H, W) "
            "for conv layers or (B, C) for linear layers (paramviz's Backbone lays token and channels-last "
            "layers out as (B, C, H, W); convert features from elsewhere with paramviz.backbones.layout.to_nchw)"
        )
    return act


def spatial_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean over every dimension after the first; (B,) -> (B,) unchanged."""
    return x.flatten(1).mean(1) if x.dim() > 1 else x


def _check_layer(layer: object) -> str:
    if not isinstance(layer, str) or not layer or ":" in layer:
        raise ConfigError(f"layer name {layer!r} is invalid; expected a non-empty string without ':'")
    return layer


def _check_nonneg_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ConfigError(f"{what} must be a non-negative integer, got {value!r}")
    return int(value)


def _check_indices(value: object, what: str) -> int | tuple[int, ...]:
    """An index or a non-empty sequence of indices (one per image), each a non-negative int."""
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) == 0:
            raise ConfigError(f"{what} list is empty; give one index per image, e.g. [3, 7, 9]")
        return tuple(_check_nonneg_int(v, what) for v in value)
    return _check_nonneg_int(value, what)


def _format_indices(value: int | tuple[int, ...] | tuple[str | int, ...] | str) -> str:
    if isinstance(value, tuple):
        return "|".join(str(v) for v in value)
    return str(value)


class ActivationObjective(Objective):
    """Base of the objectives that read one layer and support ``batch=i`` per-image targeting.

    Args:
        name: Label for logs.
        layer: Layer name as understood by the backbone.
        batch: Index of the only image the objective acts on, or None for all images.
    """

    def __init__(self, name: str, layer: str, batch: int | None = None) -> None:
        super().__init__(name)
        self.layer = _check_layer(layer)
        self.batch = None if batch is None else _check_nonneg_int(batch, f"{name}: batch index")

    def layers(self) -> set[str]:
        """The one layer this objective reads."""
        return {self.layer}

    def feature(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """This objective's layer from ``features``, shape-checked."""
        return get_feature(features, self.layer, self.name)

    def target(self, values: torch.Tensor) -> torch.Tensor:
        """Apply ``batch=i`` targeting to per-image losses: zero every image but ``i``."""
        if self.batch is None:
            return values
        size = values.shape[0]
        if self.batch >= size:
            raise ConfigError(
                f"objective {self.name!r} targets image {self.batch} but the batch has {size} images "
                f"(valid: 0..{size - 1}); lower batch= or render more images"
            )
        mask = torch.zeros(size, dtype=values.dtype, device=values.device)
        mask[self.batch] = 1
        return values * mask


class _IndexedObjective(ActivationObjective):
    """An activation objective that picks one channel (or one per image) of its layer."""

    what = "channel"

    def __init__(self, name: str, layer: str, index: Index, batch: int | None) -> None:
        super().__init__(name, layer, batch)
        self.index = _check_indices(index, f"{name}: {self.what}")
        if isinstance(self.index, tuple) and self.batch is not None:
            raise ConfigError(f"objective {name!r}: give either one {self.what} per image (a list) or batch=, not both")

    def select(self, act: torch.Tensor) -> torch.Tensor:
        """``act[:, index]`` (or ``act[i, index[i]]`` per image), shape (B,) or (B, H, W)."""
        size, count = int(act.shape[0]), int(act.shape[1])
        indices = self.index if isinstance(self.index, tuple) else (self.index,)
        for index in indices:
            if index >= count:
                raise ConfigError(
                    f"objective {self.name!r}: {self.what} {index} is out of range for layer "
                    f"{self.layer!r}, which has {count} channels (valid: 0..{count - 1})"
                )
        if isinstance(self.index, int):
            return act[:, self.index]
        if len(self.index) != size:
            raise ConfigError(
                f"objective {self.name!r} gives {len(self.index)} {self.what}s (one per image) but the batch "
                f"has {size} images; render a batch of {len(self.index)} or give {size} {self.what}s"
            )
        rows = torch.arange(size, device=act.device)
        return act[rows, torch.as_tensor(self.index, device=act.device)]


# --- objectives ----------------------------------------------------------------------------------
class Channel(_IndexedObjective):
    """Maximize the mean activation of one channel over space (Lucid's ``channel``).

    Loss per image: ``-mean_{h,w} act[b, channel, h, w]`` (for a (B, C) layer: ``-act[b, channel]``).

    Args:
        layer: Layer name.
        channel: Channel index, or a list with one channel per image of the batch.
        batch: Only this image is optimized; the others get loss 0.
    """

    def __init__(self, layer: str, channel: Index, batch: int | None = None) -> None:
        name = f"channel:{layer}:{_format_indices(_check_indices(channel, 'channel'))}"
        super().__init__(_with_batch(name, batch), layer, channel, batch)

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Loss per image, shape (B,)."""
        return self.target(-spatial_mean(self.select(self.feature(features))))


class Neuron(_IndexedObjective):
    """Maximize one unit's activation at one spatial position (Lucid's ``neuron``).

    ``x`` is the column and ``y`` the row: the unit is ``act[b, channel, y, x]``. Both default to the centre
    of the feature map, ``x = W // 2`` and ``y = H // 2`` as in Lucid. ``token=t`` names the position by its
    index in row-major order instead (``y, x = divmod(t, W)``): on a transformer layer, patch token ``t``
    (class/register tokens are not counted; see the module docstring). For a (B, C) layer there is no
    position: ``x``/``y``/``token`` must be left None and the unit is ``act[b, channel]``.

    Args:
        layer: Layer name.
        channel: Channel index, or a list with one channel per image.
        x: Column of the unit (default: centre).
        y: Row of the unit (default: centre).
        batch: Only this image is optimized; the others get loss 0.
        token: Row-major index of the position (exclusive with ``x``/``y``).
    """

    def __init__(
        self,
        layer: str,
        channel: Index,
        x: int | None = None,
        y: int | None = None,
        batch: int | None = None,
        *,
        token: int | None = None,
    ) -> None:
        self.x = None if x is None else _check_nonneg_int(x, "neuron x")
        self.y = None if y is None else _check_nonneg_int(y, "neuron y")
        self.token = None if token is None else _check_nonneg_int(token, "neuron token index")
        if (x is None) != (y is None):
            raise ConfigError(f"neuron: give both x and y or neither (got x={x!r}, y={y!r})")
        if self.token is not None and self.x is not None:
            raise ConfigError(f"neuron: give x and y or token=, not both (got x={x}, y={y}, token={token})")
        name = f"neuron:{layer}:{_format_indices(_check_indices(channel, 'channel'))}"
        if self.x is not None:
            name += f":{self.x}:{self.y}"
        elif self.token is not None:
            name += f":token={self.token}"
        super().__init__(_with_batch(name, batch), layer, channel, batch)

    def position(self, height: int, width: int) -> tuple[int, int]:
        """``(y, x)`` of the unit in a map of ``height`` x ``width``, checked to be inside it."""
        if self.token is not None:
            if self.token >= height * width:
                raise ConfigError(
                    f"objective {self.name!r}: token {self.token} is outside layer {self.layer!r}, whose grid is "
                    f"{height}x{width} (H x W: tokens 0..{height * width - 1} in row-major order, class/register "
                    "tokens not counted); pick a smaller index or render a larger image"
                )
            return divmod(self.token, width)
        return _unit_position(self, height, width)

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Loss per image, shape (B,)."""
        act = self.feature(features)
        if act.dim() == 2:
            if self.x is not None or self.token is not None:
                raise ConfigError(
                    f"objective {self.name!r}: layer {self.layer!r} is a linear layer of shape "
                    f"{tuple(act.shape)} with no spatial position; drop x and y"
                )
            return self.target(-self.select(act))
        y, x = self.position(int(act.shape[2]), int(act.shape[3]))
        return self.target(-self.select(act[:, :, y, x]))


class Direction(ActivationObjective):
    """Maximize the activation along a direction in channel space (Lucid's ``direction``).

    With ``cossim_pow == 0`` the loss per image is ``-mean_{h,w} <act[b, :, h, w], vector>``. With
    ``cossim_pow > 0`` it is Lucid's ``-mean_{h,w} <act, vector> * max(cossim(act, vector), 0.1) **
    cossim_pow``, which rewards pointing *along* the vector rather than just growing: the cosine similarity
    uses ``|a| + 1e-4`` magnitudes and is floored at 0.1, as in Lucid.

    The vector is a buffer (it moves with ``.to(device)``). Give it explicitly, or give ``seed`` to draw a
    random unit vector from ``torch.Generator().manual_seed(seed)`` (standard normal, normalized) when the
    objective first sees the layer and knows its channel count.

    Args:
        layer: Layer name.
        vector: Direction, one value per channel of the layer (not normalized). Exclusive with ``seed``.
        cossim_pow: Power of the cosine-similarity factor; 0 gives the plain dot product.
        batch: Only this image is optimized; the others get loss 0.
        seed: Draw a random unit direction from this seed instead of giving ``vector``.
    """

    kind = "direction"

    def __init__(
        self,
        layer: str,
        vector: torch.Tensor | Sequence[float] | None = None,
        cossim_pow: float = 0.0,
        batch: int | None = None,
        *,
        seed: int | None = None,
    ) -> None:
        if (vector is None) == (seed is None):
            raise ConfigError(f"{self.kind}: give exactly one of vector= and seed= (layer {layer!r})")
        if isinstance(cossim_pow, bool) or not isinstance(cossim_pow, Real) or not 0 <= cossim_pow < math.inf:
            raise ConfigError(f"{self.kind}: cossim_pow must be a number >= 0, got {cossim_pow!r}")
        self.cossim_pow = float(cossim_pow)
        self.seed = (
            None if seed is None else check_seed(_check_nonneg_int(seed, f"{self.kind} seed"), f"{self.kind} seed")
        )
        if vector is not None:
            vec = torch.as_tensor(vector, dtype=torch.float32).detach().clone()
            if vec.dim() != 1 or vec.numel() == 0 or not torch.isfinite(vec).all():
                raise ConfigError(
                    f"{self.kind}: vector must be a non-empty 1-D sequence of finite numbers (one per "
                    f"channel), got shape {tuple(vec.shape)}"
                )
        else:
            vec = None
        super().__init__(_with_batch(self._make_name(layer, vec), batch), layer, batch)
        self.register_buffer("vector", vec)

    def _make_name(self, layer: str, vec: torch.Tensor | None) -> str:
        if vec is None:
            desc = f"seed={self.seed}"
        elif vec.numel() <= 8:
            desc = "|".join(f"{v:g}" for v in vec.tolist())
            if desc.isdigit():  # a bare integer would read back as a seed
                desc += ".0"
        else:
            desc = f"vec{vec.numel()}"
        name = f"{self.kind}:{layer}:{desc}"
        return name + (f":cossim={self.cossim_pow:g}" if self.cossim_pow else "")

    def direction(self, channels: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """The direction vector, drawn from ``seed`` on first use; checked against ``channels``."""
        if self.vector is None:
            generator = torch.Generator().manual_seed(self.seed)
            vec = torch.randn(channels, generator=generator)
            self.vector = (vec / vec.norm()).to(device)
        if self.vector.numel() != channels:
            raise ConfigError(
                f"objective {self.name!r}: the direction vector has {self.vector.numel()} values but layer "
                f"{self.layer!r} has {channels} channels; give one value per channel"
            )
        return self.vector.to(device=device, dtype=dtype)

    def dot_cossim(self, act: torch.Tensor) -> torch.Tensor:
        """Per-position ``<act, v> * max(cossim, 0.1) ** cossim_pow``; ``act`` is (B, C, ...)."""
        vec = self.direction(int(act.shape[1]), act.device, act.dtype)
        vec = vec.view(1, -1, *([1] * (act.dim() - 2)))
        dot = (act * vec).sum(1)
        if self.cossim_pow == 0:
            return dot
        cossim = dot / (act.norm(dim=1) + _COSSIM_EPS) / (vec.norm() + _COSSIM_EPS)
        return dot * cossim.clamp(min=_COSSIM_FLOOR) ** self.cossim_pow

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Loss per image, shape (B,)."""
        return self.target(-spatial_mean(self.dot_cossim(self.feature(features))))


class DirectionNeuron(Direction):
    """Maximize a direction at one spatial position (Lucid's ``direction_neuron``).

    Same as :class:`Direction` but only the activation vector ``act[b, :, y, x]`` is used; ``x``/``y``
    default to the centre (``W // 2``, ``H // 2``) as in :class:`Neuron`.

    Args:
        layer: Layer name.
        vector: Direction, one value per channel. Exclusive with ``seed``.
        x: Column (default: centre).
        y: Row (default: centre).
        cossim_pow: Power of the cosine-similarity factor.
        batch: Only this image is optimized; the others get loss 0.
        seed: Draw a random unit direction from this seed instead of giving ``vector``.
    """

    kind = "direction_neuron"

    def __init__(
        self,
        layer: str,
        vector: torch.Tensor | Sequence[float] | None = None,
        x: int | None = None,
        y: int | None = None,
        cossim_pow: float = 0.0,
        batch: int | None = None,
        *,
        seed: int | None = None,
    ) -> None:
        if (x is None) != (y is None):
            raise ConfigError(f"direction_neuron: give both x and y or neither (got x={x!r}, y={y!r})")
        self.x = None if x is None else _check_nonneg_int(x, "direction_neuron x")
        self.y = None if y is None else _check_nonneg_int(y, "direction_neuron y")
        super().__init__(layer, vector, cossim_pow, batch, seed=seed)

    def _make_name(self, layer: str, vec: torch.Tensor | None) -> str:
        name = super()._make_name(layer, vec)
        if self.x is None:
            return name
        head, sep, tail = name.partition(":cossim=")
        return f"{head}:{self.x}:{self.y}{sep}{tail}"

    def position(self, height: int, width: int) -> tuple[int, int]:
        """``(y, x)`` of the unit in a map of ``height`` x ``width``, checked to be inside it."""
        return _unit_position(self, height, width)

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Loss per image, shape (B,)."""
        act = self.feature(features)
        if act.dim() == 4:
            y, x = self.position(int(act.shape[2]), int(act.shape[3]))
            act = act[:, :, y, x]
        elif self.x is not None:
            raise ConfigError(
                f"objective {self.name!r}: layer {self.layer!r} is a linear layer of shape "
                f"{tuple(act.shape)} with no spatial position; drop x and y"
            )
        return self.target(-self.dot_cossim(act))


class ClassLogit(_IndexedObjective):
    """Maximize the logit of a class (Lucid's ``class_logit``): loss ``-logits[b, class]``.

    Labels are resolved to indices with :func:`paramviz.backbones.imagenet.class_index` (ImageNet-1k), so
    ``ClassLogit("espresso")`` targets class 967; integers are used as given (any classifier). A (B, N, H, W)
    output is averaged over space.

    Args:
        index_or_label: Class index or ImageNet label, or a list with one per image of the batch.
        layer: The classifier-output layer (every catalogued backbone aliases it as ``logits``).
        batch: Only this image is optimized; the others get loss 0.
    """

    what = "class index"

    def __init__(
        self,
        index_or_label: int | str | Sequence[int | str],
        layer: str = "logits",
        batch: int | None = None,
    ) -> None:
        if isinstance(index_or_label, Sequence) and not isinstance(index_or_label, str):
            given: tuple[int | str, ...] | int | str = tuple(index_or_label)
            index: Index = [_class_index(v) for v in index_or_label]
        else:
            given = index_or_label
            index = _class_index(index_or_label)
        self.labels = given
        prefix = "logit:" if layer == "logits" else f"logit:{layer}:"
        super().__init__(_with_batch(prefix + _format_indices(given), batch), layer, index, batch)

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Loss per image, shape (B,)."""
        return self.target(-spatial_mean(self.select(self.feature(features))))


class DeepDream(ActivationObjective):
    """Amplify everything a layer responds to (Lucid's ``deepdream``): loss ``-mean(act ** 2)`` per image.

    Args:
        layer: Layer name.
        batch: Only this image is optimized; the others get loss 0.
    """

    def __init__(self, layer: str, batch: int | None = None) -> None:
        super().__init__(_with_batch(f"deepdream:{layer}", batch), layer, batch)

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Loss per image, shape (B,)."""
        return self.target(-spatial_mean(self.feature(features) ** 2))


class Diversity(ActivationObjective):
    """Push the images of a batch apart in style (Lucid's ``diversity``).

    Each image's Gram matrix ``G_b = F_b F_b^T`` (F_b: the layer's activations as C x HW) is flattened and
    L2-normalized; the loss of image ``b`` is its mean cosine similarity to the other images' Gram
    matrices, ``mean_{j != b} <G_b, G_j>``, in [0, 1] for non-negative (post-ReLU) features. Lower means more
    diverse, so add it with a positive weight: ``Channel("layer3", 7) + 100 * Diversity("layer3")``
    (Lucid writes the same as ``channel - 1e2 * diversity`` because Lucid maximizes). Lucid sums over the
    other images instead of averaging: its (batch) value is ``(B - 1) * mean_b loss_b``, so a Lucid weight
    ``w`` corresponds to ``w * (B - 1)`` here; averaging keeps the scale independent of the batch size.

    A batch of one image has no other image to differ from: its loss is 0 (with a zero gradient).

    Args:
        layer: Layer name.
    """

    couples_images = True

    def __init__(self, layer: str) -> None:
        super().__init__(f"diversity:{layer}", layer, None)

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Loss per image, shape (B,)."""
        act = self.feature(features)
        size, channels = int(act.shape[0]), int(act.shape[1])
        flat = act.reshape(size, channels, -1)
        if size < 2:
            return flat.sum((1, 2)) * 0.0  # keeps the graph connected for a single-term objective
        grams = torch.bmm(flat, flat.transpose(1, 2)).reshape(size, -1)
        grams = nn.functional.normalize(grams, p=2, dim=1, eps=1e-10)
        sims = grams @ grams.T
        return (sims.sum(1) - sims.diagonal()) / (size - 1)


class ChannelInterpolate(Objective):
    """Interpolate between two channels across the batch (Lucid's ``channel_interpolate``).

    Image ``i`` of ``B`` maximizes ``(1 - t_i) * mean act1[i, channel1] + t_i * mean act2[i, channel2]`` with
    ``t_i = i / (B - 1)``: the first image shows ``channel1``, the last ``channel2``, the others mixtures. A
    batch of one image gets ``t = 0`` (Lucid divides by zero). Add ``alignment`` to keep the frames aligned.
    The loss is the negative of that, per image; it depends on the image's position in the batch
    (:attr:`couples_images`).

    Args:
        layer1: Layer of the first channel.
        channel1: The channel the first image shows.
        layer2: Layer of the second channel (may be ``layer1``).
        channel2: The channel the last image shows.
    """

    couples_images = True

    def __init__(self, layer1: str, channel1: int, layer2: str, channel2: int) -> None:
        first = Channel(layer1, _check_nonneg_int(channel1, "channel_interpolate channel1"))
        second = Channel(layer2, _check_nonneg_int(channel2, "channel_interpolate channel2"))
        super().__init__(f"channel_interpolate:{layer1}:{channel1}:{layer2}:{channel2}")
        self.first, self.second = first, second

    def layers(self) -> set[str]:
        """Both layers."""
        return {self.first.layer, self.second.layer}

    def weights(self, size: int, like: torch.Tensor) -> torch.Tensor:
        """``t_i = i / (B - 1)`` per image (zeros for a batch of one)."""
        t = torch.arange(size, device=like.device, dtype=like.dtype)
        return t / (size - 1) if size > 1 else t

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Loss per image, shape (B,)."""
        first, second = self.first(features), self.second(features)
        t = self.weights(int(first.shape[0]), first)
        return (1 - t) * first + t * second


class Alignment(ActivationObjective):
    """Keep neighbouring images of a batch alike at a layer (Lucid's ``alignment``).

    Lucid's value is ``sum_{d=1..4} sum_i mean (act[i] - act[i + d])^2 / decay_ratio ** d``: images ``d`` apart
    in the batch are pulled together with weight ``decay_ratio ** -d``, up to :data:`ALIGNMENT_MAX_OFFSET` (4)
    apart. Used
    with ``channel_interpolate`` it makes interpolation frames that stay aligned. Lucid maximizes its
    negative; here it is the loss, so add it with a positive weight. Each pair's term is split equally
    between its two images, so the per-image losses sum to Lucid's value. A batch of one image has loss 0.

    Args:
        layer: Layer name.
        decay_ratio: How fast the weight falls with the distance in the batch, > 0 (Lucid: 2).
    """

    couples_images = True

    def __init__(self, layer: str, decay_ratio: float = 2.0) -> None:
        if isinstance(decay_ratio, bool) or not isinstance(decay_ratio, Real) or not 0 < decay_ratio < math.inf:
            raise ConfigError(f"alignment: decay_ratio must be a finite number > 0, got {decay_ratio!r}")
        self.decay_ratio = float(decay_ratio)
        name = f"alignment:{layer}" + ("" if self.decay_ratio == 2.0 else f":{self.decay_ratio:g}")
        super().__init__(name, layer, None)

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Loss per image, shape (B,)."""
        act = self.feature(features)
        size = int(act.shape[0])
        loss = act.flatten(1).sum(1) * 0.0  # keeps the graph connected for a batch of one
        for d in range(1, min(ALIGNMENT_MAX_OFFSET, size - 1) + 1):
            pair = (act[d:] - act[:-d]).pow(2).flatten(1).mean(1) / self.decay_ratio**d
            loss = loss + 0.5 * (nn.functional.pad(pair, (0, d)) + nn.functional.pad(pair, (d, 0)))
        return loss


def required_batch(objective: Objective) -> int | None:
    """Batch size demanded by the per-image index lists in ``objective`` (e.g. ``Channel(l, [3, 7, 9])``: 3).

    Lets a task size the rendered batch from the objective before step 1. Returns None when no term has a
    list (any batch size works).

    Raises:
        ConfigError: Two terms give lists of different lengths.
    """
    sizes: dict[str, int] = {}
    for _, leaf in objective.leaves():
        if isinstance(leaf, _IndexedObjective) and isinstance(leaf.index, tuple):
            sizes[leaf.name] = len(leaf.index)
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{name!r} ({size} images)" for name, size in sizes.items())
        raise ConfigError(f"per-image index lists of different lengths: {listed}; give every list one entry per image")
    return next(iter(sizes.values()), None)


# --- helpers for names and labels ----------------------------------------------------------------
def _with_batch(name: str, batch: object) -> str:
    return name if batch is None else f"{name}@{batch}"


def _unit_position(obj: Neuron | DirectionNeuron, height: int, width: int) -> tuple[int, int]:
    x = width // 2 if obj.x is None else obj.x
    y = height // 2 if obj.y is None else obj.y
    if x >= width or y >= height:
        bad = f"x={x}" if x >= width else f"y={y}"
        raise ConfigError(
            f"objective {obj.name!r}: {bad} is outside layer {obj.layer!r}, whose feature map is "
            f"{height}x{width} (H x W; valid x: 0..{width - 1}, y: 0..{height - 1}); pick a position "
            "inside it or render a larger image"
        )
    return y, x


def _class_index(value: object) -> int:
    if isinstance(value, str):
        from paramviz.backbones.imagenet import class_index  # lazy: objectives must not import backbones

        return int(class_index(value))
    return _check_nonneg_int(value, "class index")


OBJECTIVES.register("channel", Channel)
OBJECTIVES.register("neuron", Neuron)
OBJECTIVES.register("direction", Direction)
OBJECTIVES.register("direction_neuron", DirectionNeuron)
OBJECTIVES.register("logit", ClassLogit)
OBJECTIVES.register("deepdream", DeepDream)
OBJECTIVES.register("diversity", Diversity)
OBJECTIVES.register("alignment", Alignment)
OBJECTIVES.register("channel_interpolate", ChannelInterpolate)
