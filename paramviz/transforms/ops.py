"""The transform ops (``pad``, ``jitter``, ``scale``, ``rotate``, ``noise``, ``blur``) and the spec-token parsers.

Every op is an ``nn.Module`` with a two-step forward so draws can be replayed:

- ``sample(shape, generator=None) -> params``: draws its random parameters for a batch of ``shape`` from a CPU
  generator (or torch's global RNG), one draw per image, as CPU tensors (so a seed gives the same draws on every
  device);
- ``to_device(params, device) -> params``: the params as ``apply`` wants them on that device (moved once, ahead
  of the steps that use them, so a step copies nothing between host and device);
- ``apply(x, params) -> x'``: the deterministic, differentiable transform with those parameters.

Rotation and scale are one bilinear warp about the centre (the same as kornia's ``warp_affine`` with
``get_rotation_matrix2d``, built as a sampling grid on the device); integer shifts and crops move pixels
exactly, without interpolation (crop offsets stay on the host: they are slice bounds).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from paramviz.device import move_ahead
from paramviz.errors import ImageError, SpecError
from paramviz.registry import Registry

Params = dict[str, torch.Tensor]

_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_NUM_RE = re.compile(rf"^{_NUM}$")
_RANGE_RE = re.compile(rf"^({_NUM})-({_NUM})$")


def fmt_number(value: float) -> str:
    """Shortest text that parses back to exactly ``value`` (integers without a decimal point)."""
    value = float(value)
    if value.is_integer():
        return str(int(value))
    return repr(value)


def spec_error(token: str, problem: str, expected: str, example: str) -> SpecError:
    """A :class:`SpecError` that names the bad token, what was wrong, what was expected and an example."""
    return SpecError(f"transform spec {token!r}: {problem}; expected {expected} (e.g. {example!r})")


class Transform(nn.Module):
    """Base class of transform ops (see the module docstring for the ``sample``/``apply`` protocol)."""

    #: Op name in spec strings.
    name: ClassVar[str] = ""
    #: Whether the op draws random parameters (``sample`` returns a non-empty dict); deterministic ops give
    #: the same output every step.
    random: ClassVar[bool] = True
    #: Grammar of the op's spec token, shown in errors.
    usage: ClassVar[str] = ""
    #: Example spec token, shown in errors.
    example: ClassVar[str] = ""

    @classmethod
    def parse(cls, args: Sequence[str], token: str) -> Transform:
        """Build the op from the ``:``-separated arguments of its spec token."""
        raise NotImplementedError

    @property
    def spec(self) -> str:
        """Canonical spec token; ``parse`` of it gives an equal op."""
        raise NotImplementedError

    def sample(self, shape: Sequence[int], generator: torch.Generator | None = None) -> Params:
        """Random parameters for an input batch of ``shape`` (B, C, H, W).

        Args:
            shape: Input batch shape.
            generator: A CPU ``torch.Generator`` to draw from (``None``: torch's global RNG).
        """
        return {}

    def to_device(self, params: Params, device: torch.device | str) -> Params:
        """``params`` placed where :meth:`apply` reads them on ``device`` (default: every tensor moved there).

        The move must not make the host wait (draws are moved ahead of the steps that read them): use
        :func:`paramviz.device.move_ahead`.
        """
        return {key: move_ahead(value, device) for key, value in params.items()}

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        """The transform of ``x`` with the given parameters (differentiable in ``x``)."""
        raise NotImplementedError

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """Spatial size ``(H, W)`` of the output for an input of ``size``."""
        return size

    def forward(self, x: torch.Tensor, params: Params | None = None) -> torch.Tensor:
        """Transform ``x`` with new random parameters, or with ``params`` if given."""
        return self.apply(x, self.sample(tuple(x.shape)) if params is None else params)

    def extra_repr(self) -> str:
        return repr(self.spec)

    # --- parsing helpers ---------------------------------------------------------------------------
    @classmethod
    def _error(cls, token: str, problem: str) -> SpecError:
        return spec_error(token, problem, cls.usage, cls.example)

    @classmethod
    def _number(cls, text: str, token: str, what: str) -> float:
        text = text.strip()
        if not _NUM_RE.match(text) or not math.isfinite(float(text)):
            raise cls._error(token, f"{what} {text!r} is not a number")
        return float(text)

    @classmethod
    def _int(cls, text: str, token: str, what: str) -> int:
        value = cls._number(text, token, what)
        if not value.is_integer() or value < 0:
            raise cls._error(token, f"{what} must be a non-negative integer, got {text.strip()!r}")
        return int(value)

    @classmethod
    def _nargs(cls, args: Sequence[str], token: str, lo: int, hi: int) -> None:
        if not lo <= len(args) <= hi:
            takes = f"{lo} argument{'s' if lo > 1 else ''}" if lo == hi else f"{lo} to {hi} arguments"
            raise cls._error(token, f"{cls.name} takes {takes}, got {len(args)}")


def _check_batch(params_batch: int, x: torch.Tensor, op: str) -> None:
    if params_batch != x.shape[0]:
        raise ImageError(f"{op}: the draw is for a batch of {params_batch} images, got {x.shape[0]}")


def _reflect_index(idx: torch.Tensor, n: int) -> torch.Tensor:
    """Map integer positions onto ``[0, n)`` by mirror reflection without repeating the edge (numpy 'reflect')."""
    if n == 1:
        return torch.zeros_like(idx)
    period = 2 * (n - 1)
    m = idx.remainder(period)
    return torch.where(m >= n, period - m, m)


class _Crops(torch.autograd.Function):
    """Per-image crops ``out[i] = x[i, :, dy : dy + h, dx : dx + w]`` at host-side offsets, in O(batch) work.

    Slicing each image and concatenating costs, in the backward pass, one zero-filled gradient of the whole
    batch per image (autograd's slice backward), summed: O(batch²). Here the backward writes each image's
    gradient into one zero-filled tensor.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, offsets: list[list[int]], h: int, w: int) -> torch.Tensor:
        ctx.offsets, ctx.shape = offsets, x.shape
        out = x.new_empty((x.shape[0], x.shape[1], h, w))
        for i, (dy, dx) in enumerate(offsets):
            out[i].copy_(x[i, :, dy : dy + h, dx : dx + w])
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        h, w = grad.shape[-2:]
        grad_x = grad.new_zeros(ctx.shape)
        for i, (dy, dx) in enumerate(ctx.offsets):
            grad_x[i, :, dy : dy + h, dx : dx + w].copy_(grad[i])
        return grad_x, None, None, None


def _gather(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Per-image pixel gather: ``out[b, :, i, j] = x[b, :, rows[b, i], cols[b, j]]``."""
    b = torch.arange(x.shape[0], device=x.device)[:, None, None]
    out = x[b, :, rows[:, :, None], cols[:, None, :]]  # (B, H', W', C): advanced dims come first
    return out.permute(0, 3, 1, 2).contiguous()


class Pad(Transform):
    """Pad every side by ``size`` pixels: constant ``value`` (Lucid: 0.5), ``reflect`` or ``replicate``.

    Args:
        size: Pixels added on each side.
        mode: ``constant``, ``reflect`` (mirror without repeating the edge) or ``replicate``.
        value: Fill value of ``constant`` mode, in [0, 1].
    """

    name = "pad"
    random = False
    usage = "pad:N, pad:N:VALUE or pad:N:reflect|replicate with N >= 0 pixels and VALUE in [0, 1]"
    example = "pad:12"
    modes = ("constant", "reflect", "replicate")

    def __init__(self, size: int, mode: str = "constant", value: float = 0.5) -> None:
        super().__init__()
        if mode not in self.modes:
            raise ValueError(f"pad mode must be one of {self.modes}, got {mode!r}")
        self.size = int(size)
        self.mode = mode
        self.value = float(value)

    @classmethod
    def parse(cls, args: Sequence[str], token: str) -> Pad:
        cls._nargs(args, token, 1, 2)
        size = cls._int(args[0], token, "pad size")
        if len(args) == 1:
            return cls(size)
        arg = args[1].strip().lower()
        if arg in cls.modes:
            return cls(size, arg)
        if not _NUM_RE.match(arg):
            raise cls._error(token, f"unknown pad mode {args[1]!r}")
        value = cls._number(arg, token, "pad value")
        if not 0 <= value <= 1:
            raise cls._error(token, f"pad value must be in [0, 1], got {args[1]!r}")
        return cls(size, "constant", value)

    @property
    def spec(self) -> str:
        if self.mode != "constant":
            return f"pad:{self.size}:{self.mode}"
        if self.value != 0.5:
            return f"pad:{self.size}:{fmt_number(self.value)}"
        return f"pad:{self.size}"

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return size[0] + 2 * self.size, size[1] + 2 * self.size

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        p = self.size
        if p == 0:
            return x
        if self.mode == "constant":
            return F.pad(x, (p, p, p, p), mode="constant", value=self.value)
        h, w = x.shape[-2:]
        rows = torch.arange(-p, h + p, device=x.device)
        cols = torch.arange(-p, w + p, device=x.device)
        if self.mode == "reflect":
            rows, cols = _reflect_index(rows, h), _reflect_index(cols, w)
        else:
            rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
        return x.index_select(-2, rows).index_select(-1, cols)


class Jitter(Transform):
    """Random integer translation by up to ``d`` pixels per axis, one draw per image.

    Two modes:

    - ``shift`` (default): the content moves by ``(dy, dx)``, each uniform in ``{-d, ..., d}``; the output has
      the input's size and the uncovered border is filled by mirror reflection of the image.
    - ``crop``: Lucid's ``jitter(d)`` exactly: a random ``(H - d, W - d)`` crop whose top-left corner is
      uniform in ``{0, ..., d}`` per axis (the output shrinks by ``d``; no new content is invented).

    Params of a draw: ``shift`` (B, 2) as ``(dy, dx)`` in shift mode, ``offset`` (B, 2) as ``(top, left)``
    in crop mode.

    Args:
        d: Largest translation in pixels.
        mode: ``shift`` or ``crop``.
    """

    name = "jitter"
    usage = "jitter:D or jitter:D:crop with D >= 0 pixels"
    example = "jitter:8"
    modes = ("shift", "crop")

    def __init__(self, d: int, mode: str = "shift") -> None:
        super().__init__()
        if mode not in self.modes:
            raise ValueError(f"jitter mode must be one of {self.modes}, got {mode!r}")
        self.d = int(d)
        self.mode = mode

    @classmethod
    def parse(cls, args: Sequence[str], token: str) -> Jitter:
        cls._nargs(args, token, 1, 2)
        d = cls._int(args[0], token, "jitter distance")
        mode = args[1].strip().lower() if len(args) == 2 else "shift"
        if mode not in cls.modes:
            raise cls._error(token, f"unknown jitter mode {args[1]!r} (modes: shift, crop)")
        return cls(d, mode)

    @property
    def spec(self) -> str:
        return f"jitter:{self.d}" + (":crop" if self.mode == "crop" else "")

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        if self.mode == "shift":
            return size
        if min(size) <= self.d:
            raise ImageError(
                f"{self.spec}: crops {self.d} pixels, so the image must be larger than {self.d} pixels per "
                f"side; got {size[0]}x{size[1]}"
            )
        return size[0] - self.d, size[1] - self.d

    def sample(self, shape: Sequence[int], generator: torch.Generator | None = None) -> Params:
        self.output_size((int(shape[-2]), int(shape[-1])))
        if self.mode == "shift":
            return {"shift": torch.randint(-self.d, self.d + 1, (int(shape[0]), 2), generator=generator)}
        return {"offset": torch.randint(0, self.d + 1, (int(shape[0]), 2), generator=generator)}

    def to_device(self, params: Params, device: torch.device | str) -> Params:
        if self.mode == "crop":  # slice bounds: read on the host, where reading them needs no synchronization
            return {key: value.cpu() for key, value in params.items()}
        return super().to_device(params, device)

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        h, w = x.shape[-2:]
        out_h, out_w = self.output_size((h, w))
        key = "shift" if self.mode == "shift" else "offset"
        _check_batch(params[key].shape[0], x, self.spec)
        if self.mode == "shift":
            move = params[key].to(device=x.device, dtype=torch.long)
            # out[i] = x[i - dy]: the content moves by +dy.
            rows = _reflect_index(torch.arange(h, device=x.device)[None] - move[:, :1], h)
            cols = _reflect_index(torch.arange(w, device=x.device)[None] - move[:, 1:], w)
        else:  # a crop stays inside the image: plain copies per image (far cheaper than a gather)
            offsets = params[key].tolist()
            if len(offsets) == 1:  # one image: the crop is a view (no copy; autograd's slice backward)
                ((dy, dx),) = offsets
                return x[:, :, dy : dy + out_h, dx : dx + out_w]
            return _Crops.apply(x, offsets, out_h, out_w)
        return _gather(x, rows, cols)


class AffineOp(Transform):
    """An op with one random value per image, drawn from a finite list (uniformly, duplicates count) or a range.

    Args:
        choices: Values to pick from (uniformly; repeat a value to make it more likely), or ``None``.
        low: Lower end of a uniform range (used when ``choices`` is ``None``).
        high: Upper end of the range.
    """

    key: ClassVar[str] = ""

    def __init__(
        self, choices: Sequence[float] | None = None, low: float | None = None, high: float | None = None
    ) -> None:
        super().__init__()
        if choices is not None:
            if len(choices) == 0:
                raise ValueError(f"{self.name}: choices must not be empty")
            self.choices: tuple[float, ...] | None = tuple(float(c) for c in choices)
            self.low, self.high = min(self.choices), max(self.choices)
        else:
            if low is None or high is None or low > high:
                raise ValueError(f"{self.name}: need choices or a range low <= high, got {low!r}, {high!r}")
            self.choices = None
            self.low, self.high = float(low), float(high)

    def sample(self, shape: Sequence[int], generator: torch.Generator | None = None) -> Params:
        batch = int(shape[0])
        if self.choices is not None:
            index = torch.randint(len(self.choices), (batch,), generator=generator)
            values = torch.tensor(self.choices, dtype=torch.float64)[index]
        else:
            values = self.low + (self.high - self.low) * torch.rand(batch, dtype=torch.float64, generator=generator)
        return {self.key: values}

    def _values_spec(self) -> str:
        # stacks compare specs every step: the text is kept for as long as the values it was made from
        values = (self.choices, self.low, self.high)
        cached = self.__dict__.get("_values_text")
        if cached is None or cached[0] != values:
            if self.choices is not None:
                text = "|".join(fmt_number(c) for c in self.choices)
            else:
                text = f"{fmt_number(self.low)}-{fmt_number(self.high)}"
            self.__dict__["_values_text"] = cached = (values, text)
        return cached[1]

    @classmethod
    def _parse_values(cls, text: str, token: str) -> tuple[tuple[float, ...] | None, float, float]:
        """``a|b|c`` -> choices; ``lo-hi`` -> range; a single number -> ``(None, x, x)`` for the caller."""
        text = text.strip()
        if "|" in text:
            choices = tuple(cls._number(t, token, "value") for t in text.split("|"))
            return choices, min(choices), max(choices)
        match = _RANGE_RE.match(text)
        if match:
            lo = cls._number(match.group(1), token, "range start")
            hi = cls._number(match.group(2), token, "range end")
            if lo > hi:
                raise cls._error(token, f"range {text!r} has start > end")
            return None, lo, hi
        value = cls._number(text, token, "value")
        return None, value, value

    def affine_params(self, params: Params) -> tuple[torch.Tensor, torch.Tensor]:
        """``(angle in degrees, scale)`` per image of a draw, so a stack can fuse neighbouring affine ops."""
        raise NotImplementedError

    def _affine(self, x: torch.Tensor, angle: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return affine_about_centre(x, angle, scale, self.spec)


def affine_about_centre(x: torch.Tensor, angle: torch.Tensor, scale: torch.Tensor, op: str = "affine") -> torch.Tensor:
    """Rotate by ``angle`` degrees (counter-clockwise) and zoom by ``scale`` about the centre, in one warp.

    Rotation and isotropic zoom about the same centre commute, so a scale op followed by a rotate op (or the
    reverse) is exactly this single warp, with one bilinear interpolation instead of two. The result equals
    ``kornia.geometry.transform.warp_affine(x, get_rotation_matrix2d(centre, angle, scale), (H, W),
    padding_mode="reflection", align_corners=True)`` (tested), built directly as the normalized sampling grid
    so that no tensor is created on the host: kornia's normalization matrices are, and each such copy is a
    host-device synchronization on CUDA.
    """
    h, w = x.shape[-2:]
    _check_batch(angle.shape[0], x, op)
    dtype = x.dtype if x.is_floating_point() else torch.float32
    return warp_about_centre(x, affine_linear(angle, scale, (h, w), dtype, x.device))


def affine_linear(
    angle: torch.Tensor, scale: torch.Tensor, size: tuple[int, int], dtype: torch.dtype, device: torch.device | str
) -> torch.Tensor:
    """The (B, 2, 2) linear part of the warp's inverse map (output -> input) in normalized coordinates.

    A rotation by ``-angle`` degrees and a zoom by ``1 / scale`` about the centre (the origin), with the aspect
    ratio of the ``size = (H, W)`` pixel grid taken into account: ``affine_grid``'s ``theta[:, :, :2]``.
    """
    h, w = size
    radians = angle.to(device=device, dtype=dtype) * (math.pi / 180)
    inverse_scale = scale.to(device=device, dtype=dtype).reciprocal()
    a = torch.cos(radians) * inverse_scale
    s = torch.sin(radians) * inverse_scale
    aspect = (w - 1) / (h - 1) if h > 1 and w > 1 else 1.0
    return torch.stack([a, -s / aspect, s * aspect, a], 1).view(-1, 2, 2)


def warp_about_centre(x: torch.Tensor, linear: torch.Tensor) -> torch.Tensor:
    """The bilinear warp of ``x`` (reflection padding, align_corners) whose inverse map is ``linear`` (B, 2, 2).

    ``linear`` (:func:`affine_linear`) must have ``x``'s dtype and device.
    """
    h, w = x.shape[-2:]
    return _sample(x, _affine_grid(linear, h, w))


def _affine_grid(linear: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``F.affine_grid(theta, align_corners=True)`` for ``theta = [linear | 0]`` (no translation), by broadcasting.

    ``grid[b, i, j] = linear[b, :, 0] * x_j + linear[b, :, 1] * y_i`` (``x``, ``y`` from -1 to 1): one
    image-sized add instead of affine_grid's product with a base grid it builds every call (3x faster at 240 px).
    """
    xs = torch.linspace(-1, 1, w, device=linear.device, dtype=linear.dtype) if w > 1 else linear.new_zeros(1)
    ys = torch.linspace(-1, 1, h, device=linear.device, dtype=linear.dtype) if h > 1 else linear.new_zeros(1)
    columns = linear[:, None, :, 0] * xs[None, :, None]  # (B, W, 2)
    rows = linear[:, None, :, 1] * ys[None, :, None]  # (B, H, 2)
    return columns[:, None] + rows[:, :, None]


#: Bands of fewer output pixels cost more to split and join than their parallel sampling saves (2 CPU cores:
#: the split is 0.06 ms slower at 64 px and 0.4 ms faster at 224 px, per step, forward and backward).
_MIN_BAND_PIXELS = 5000


def _grid_sample(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=True)


def _sample(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear ``grid_sample`` with reflection padding (align_corners), using every CPU thread.

    torch's CPU kernel runs in parallel over the images of the batch only, so a batch smaller than the
    thread count leaves threads idle. Such a batch (of large enough images) is sampled as ``parts`` bands of
    output rows, each band one entry of a larger batch over views of the same input: each output pixel is
    computed exactly as before (the gradient of the input sums the bands' contributions in another order:
    float rounding). On CUDA, and with enough images, it is one plain call.
    """
    b, c = x.shape[:2]
    h, w = grid.shape[1:3]
    parts = min(torch.get_num_threads() // b, h * w // _MIN_BAND_PIXELS) if x.device.type == "cpu" else 1
    if parts < 2:
        return _grid_sample(x, grid)
    rows = -(-h // parts)
    if rows * parts != h:  # the last band is padded with copies of the last row, sliced off below
        grid = torch.cat([grid, grid[:, -1:].expand(b, rows * parts - h, w, 2)], 1)
    bands = grid.view(b, parts, rows, w, 2).transpose(0, 1).reshape(parts * b, rows, w, 2)  # entry p * b + i
    inputs = x.expand(parts, *x.shape[1:]) if b == 1 else x.repeat(parts, 1, 1, 1)
    out = _grid_sample(inputs, bands).view(parts, b, c, rows, w)
    out = out.permute(1, 2, 0, 3, 4).reshape(b, c, parts * rows, w)
    return out[:, :, :h] if rows * parts != h else out


class Scale(AffineOp):
    """Random zoom about the image centre, output the same size (uncovered border filled by reflection).

    Lucid resizes the whole batch with one scale (the image size changes); here each image gets its own
    scale and keeps its size, so the network sees the same content at the same relative zoom.
    Params of a draw: ``scale`` (B,), float64.
    """

    name = "scale"
    key = "scale"
    usage = "scale:S1|S2|... (a set), scale:LO-HI (a uniform range) or scale:S, with values > 0"
    example = "scale:0.9-1.1"

    @classmethod
    def parse(cls, args: Sequence[str], token: str) -> Scale:
        cls._nargs(args, token, 1, 1)
        choices, lo, hi = cls._parse_values(args[0], token)
        if lo <= 0:
            raise cls._error(token, f"scale factors must be > 0, got {fmt_number(lo)}")
        if choices is None and lo == hi:
            choices = (lo,)
        return cls(choices, lo, hi)

    @property
    def spec(self) -> str:
        return f"scale:{self._values_spec()}"

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        return self._affine(x, *self.affine_params(params))

    def affine_params(self, params: Params) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros_like(params["scale"]), params["scale"]


class Rotate(AffineOp):
    """Random rotation about the image centre in degrees (counter-clockwise), output the same size.

    ``rotate:10`` draws uniformly from [-10, 10]; ``rotate:-5|0|5`` picks from a set (Lucid's preset picks
    from ``list(range(-10, 11)) + 5 * [0]``). Corners are filled by reflection (Lucid fills with zeros). Lucid
    converts degrees with 3.14 / 180 instead of pi / 180 (angles 0.05% smaller); we use exact degrees.
    Params of a draw: ``angle`` (B,) in degrees, float64.
    """

    name = "rotate"
    key = "angle"
    usage = "rotate:MAX (uniform in [-MAX, MAX] degrees), rotate:LO-HI or rotate:A1|A2|... (a set)"
    example = "rotate:10"

    @classmethod
    def parse(cls, args: Sequence[str], token: str) -> Rotate:
        cls._nargs(args, token, 1, 1)
        text = args[0].strip()
        choices, lo, hi = cls._parse_values(text, token)
        if choices is None and lo == hi and not _RANGE_RE.match(text):
            if lo < 0:
                raise cls._error(token, f"the largest angle must be >= 0, got {text!r}")
            lo, hi = -lo, lo
        return cls(choices, lo, hi)

    @property
    def spec(self) -> str:
        if self.choices is None and self.low == -self.high:
            return f"rotate:{fmt_number(self.high)}"
        return f"rotate:{self._values_spec()}"

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        return self._affine(x, *self.affine_params(params))

    def affine_params(self, params: Params) -> tuple[torch.Tensor, torch.Tensor]:
        return params["angle"], torch.ones_like(params["angle"])


class Noise(Transform):
    """Additive Gaussian pixel noise with standard deviation ``std`` (the result is not clipped).

    Params of a draw: ``noise`` (B, C, H, W), float32.
    """

    name = "noise"
    usage = "noise:STD with STD >= 0"
    example = "noise:0.02"

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = float(std)

    @classmethod
    def parse(cls, args: Sequence[str], token: str) -> Noise:
        cls._nargs(args, token, 1, 1)
        std = cls._number(args[0], token, "noise std")
        if std < 0:
            raise cls._error(token, f"noise std must be >= 0, got {args[0]!r}")
        return cls(std)

    @property
    def spec(self) -> str:
        return f"noise:{fmt_number(self.std)}"

    def sample(self, shape: Sequence[int], generator: torch.Generator | None = None) -> Params:
        return {"noise": torch.randn(tuple(int(s) for s in shape), generator=generator) * self.std}

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        noise = params["noise"]
        if tuple(noise.shape) != tuple(x.shape):
            raise ImageError(
                f"{self.spec}: the draw is for a batch of shape {tuple(noise.shape)}, got {tuple(x.shape)}"
            )
        return x + noise.to(device=x.device, dtype=x.dtype)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of (B, C, H, W) with standard deviation ``sigma`` pixels (same size, replicated borders).

    The separable kernel has ``2 * ceil(3 * sigma) + 1`` taps (at least 3) and sums to 1, so a constant image
    is unchanged; ``sigma == 0`` returns ``x``.
    """
    if sigma == 0:
        return x
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = x.shape[1]
    out = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


class Blur(Transform):
    """Gaussian blur with standard deviation ``sigma`` pixels (deterministic; :func:`gaussian_blur`).

    The network then sees a smoothed image every step, which discourages high frequencies in the rendered
    one (a transform alternative to the ``blur`` penalty of :mod:`paramviz.objectives.penalties`).
    """

    name = "blur"
    random = False
    usage = "blur:SIGMA with SIGMA > 0 (pixels)"
    example = "blur:1"

    def __init__(self, sigma: float) -> None:
        super().__init__()
        self.sigma = float(sigma)

    @classmethod
    def parse(cls, args: Sequence[str], token: str) -> Blur:
        cls._nargs(args, token, 1, 1)
        sigma = cls._number(args[0], token, "blur sigma")
        if sigma <= 0:
            raise cls._error(token, f"blur sigma must be > 0, got {args[0]!r}")
        return cls(sigma)

    @property
    def spec(self) -> str:
        return f"blur:{fmt_number(self.sigma)}"

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        return gaussian_blur(x, self.sigma)


#: Registry of transform ops by spec name.
TRANSFORM_OPS: Registry[type[Transform]] = Registry("transform op")
for _op in (Pad, Jitter, Scale, Rotate, Noise, Blur):
    TRANSFORM_OPS.register(_op.name, _op)
