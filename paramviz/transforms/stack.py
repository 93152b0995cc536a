"""``TransformStack``, replayable draws, the spec parser and the named presets."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from paramviz.device import move_ahead
from paramviz.errors import ImageError, SpecError, close_matches
from paramviz.registry import Registry
from paramviz.transforms.ops import (
    TRANSFORM_OPS,
    AffineOp,
    Params,
    Transform,
    affine_about_centre,
    affine_linear,
    fmt_number,
    warp_about_centre,
)

#: Lucid's ``standard_transforms`` values.
LUCID_SCALES: tuple[float, ...] = tuple(1 + (i - 5) / 50.0 for i in range(11))
LUCID_ANGLES: tuple[float, ...] = tuple(float(a) for a in [*range(-10, 11), *(5 * [0])])

#: Named transform stacks; each maps to a spec string.
TRANSFORM_PRESETS: Registry[str] = Registry("transform preset")
TRANSFORM_PRESETS.register("none", "none", description="no transforms (identity)")
TRANSFORM_PRESETS.register("jitter", "jitter:8", description="random shift by up to 8 pixels")
TRANSFORM_PRESETS.register(
    "lucid",
    "pad:12,jitter:8:crop,scale:{},rotate:{},jitter:4:crop".format(
        "|".join(map(fmt_number, LUCID_SCALES)), "|".join(map(fmt_number, LUCID_ANGLES))
    ),
    description="Lucid's standard_transforms: pad 12 (0.5), jitter 8, scale 0.90-1.10, rotate -10..10, jitter 4",
)
TRANSFORM_PRESETS.hint = f"choices: {', '.join(TRANSFORM_PRESETS.names())}, or a spec such as 'pad:12,jitter:8'"

#: Where transform draws come from: torch's global RNG, one generator, or one generator per image.
Generators = torch.Generator | Sequence[torch.Generator] | None

_EXAMPLE = "pad:12,jitter:8,scale:0.9-1.1,rotate:10,jitter:4"


@dataclass(frozen=True)
class TransformDraw:
    """The random parameters of one pass through a :class:`TransformStack`, for replay.

    Attributes:
        spec: Canonical spec of the stack that drew them.
        shape: Input shape (B, C, H, W) they were drawn for.
        params: One dict of CPU tensors per op, in stack order (empty for deterministic ops), e.g.
            ``{"angle": (B,) degrees}``, ``{"scale": (B,)}``, ``{"shift": (B, 2)}``.
        warps: Made by :meth:`TransformStack.to_device` (else empty): per op, for the first op of each run of
            adjacent rotate/scale ops, the run's fused warp (B, 2, 2) (:func:`~paramviz.transforms.ops.affine_linear`
            for its input size, in the default dtype, on the device), else ``None``. Computed with the draws ahead
            of the steps, so a step does not rebuild it from the angles and scales (a dozen small ops less).
    """

    spec: str
    shape: tuple[int, ...]
    params: tuple[Params, ...]
    warps: tuple[torch.Tensor | None, ...] = field(default=(), compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.params)

    def __getitem__(self, index: int) -> Params:
        return self.params[index]


class TransformStack(nn.Module):
    """A sequence of random, differentiable image transforms whose draws can be replayed.

    ``forward(x)`` draws new parameters from torch's global RNG (one draw per image, so the same
    ``torch.manual_seed`` gives the same draws) and stores them in :attr:`last_draw`;
    ``forward(x2, draw=stack.last_draw)`` applies exactly the same transforms to another batch of the same
    shape. Adjacent rotate/scale ops are applied as one affine warp (they commute about the centre), so a
    stack like ``scale,rotate`` interpolates once. The output stays on the input's device and dtype; its
    size is ``output_size(input size)`` (padding grows it, ``jitter:D:crop`` shrinks it, the other ops keep it).

    Args:
        ops: The transform ops, applied in order.
        preset: The preset name this stack was built from, if any (informational).
    """

    def __init__(self, ops: Iterable[Transform] = (), *, preset: str | None = None) -> None:
        super().__init__()
        self.ops = nn.ModuleList(ops)
        self.preset = preset
        self.last_draw: TransformDraw | None = None

    @property
    def spec(self) -> str:
        """Canonical spec string (``"none"`` for the empty stack); ``build_transforms(spec)`` rebuilds it."""
        return ",".join(op.spec for op in self.ops) or "none"

    @property
    def random(self) -> bool:
        """Whether any op draws random parameters (else every pass gives the same output)."""
        return any(op.random for op in self.ops)

    def describe(self) -> str:
        """The canonical spec string, for config files and logs (same as :attr:`spec`)."""
        return self.spec

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """Spatial size ``(H, W)`` of the output for an input of ``size``."""
        for op in self.ops:
            size = op.output_size(size)
        return size

    def sample(self, shape: Sequence[int], generator: Generators = None) -> TransformDraw:
        """Draw parameters for an input batch of ``shape`` (B, C, H, W).

        Args:
            shape: The input batch shape.
            generator: ``None`` (torch's global RNG), one CPU ``torch.Generator`` for the whole batch, or a
                sequence of B generators, one per image: image ``i`` then gets exactly the draws a batch of one
                would get from generator ``i`` (how batched sweep arms reproduce their single runs).
        """
        shape = tuple(int(s) for s in shape)
        if len(shape) != 4:
            raise ImageError(f"expected an input shape (B, C, H, W), got {shape}")
        if generator is not None and not isinstance(generator, torch.Generator):
            generators = list(generator)
            if len(generators) != shape[0]:
                raise ImageError(f"got {len(generators)} generators for a batch of {shape[0]}; give one per image")
            draws = [self.sample((1, *shape[1:]), g) for g in generators]
            params = tuple(
                {key: torch.cat([d.params[i][key] for d in draws]) for key in draws[0].params[i]}
                for i in range(len(self.ops))
            )
            return TransformDraw(self.spec, shape, params)
        params = []
        size = (shape[2], shape[3])
        for op in self.ops:
            params.append(op.sample((shape[0], shape[1], *size), generator))
            size = op.output_size(size)
        return TransformDraw(self.spec, shape, tuple(params))

    def to_device(self, draw: TransformDraw, device: torch.device | str) -> TransformDraw:
        """``draw`` placed for :meth:`forward` on ``device``, with the fused warps of its rotate/scale runs.

        Each op's params are placed as its ``Transform.to_device`` says, and each run of adjacent rotate/scale ops
        gets its fused warp (``TransformDraw.warps``).
        """
        params = tuple(op.to_device(p, device) for op, p in zip(self.ops, draw.params, strict=True))
        warps: list[torch.Tensor | None] = [None] * len(self.ops)
        size = (draw.shape[2], draw.shape[3])
        runs = self._affine_runs()
        for i, op in enumerate(self.ops):
            if i in runs:
                angle, scale = self._fused(runs[i], draw.params)
                linear = affine_linear(angle, scale, size, torch.get_default_dtype(), angle.device)
                warps[i] = move_ahead(linear, device)
            size = op.output_size(size)
        return TransformDraw(draw.spec, draw.shape, params, tuple(warps) if runs else ())

    def _affine_runs(self) -> dict[int, range]:
        """``{first op index: op indices}`` of each run of adjacent rotate/scale ops (applied as one warp)."""
        runs: dict[int, range] = {}
        start = None
        for i, op in enumerate([*self.ops, None]):
            if isinstance(op, AffineOp):
                start = i if start is None else start
            elif start is not None:
                runs[start], start = range(start, i), None
        return runs

    def _fused(self, run: range, params: Sequence[Params]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(angle, scale)`` of a run of rotate/scale ops: about the centre, angles add and scales multiply."""
        angle, scale = self.ops[run[0]].affine_params(params[run[0]])
        for i in run[1:]:
            a, z = self.ops[i].affine_params(params[i])
            angle, scale = angle + a, scale * z
        return angle, scale

    def plan(
        self, shape: Sequence[int], steps: int, generator: Generators = None, device: torch.device | str = "cpu"
    ) -> list[TransformDraw]:
        """Draws for ``steps`` passes, moved to ``device`` ahead of time.

        They are sampled in order, so they are exactly what ``steps`` calls of :meth:`sample` give; a step that
        replays one copies nothing between host and device.
        """
        return [self.to_device(self.sample(shape, generator), device) for _ in range(steps)]

    def draw_bytes(self, shape: Sequence[int]) -> int:
        """Size in bytes of one draw for ``shape`` (to decide how many steps to draw ahead)."""
        draw = self.sample(shape, torch.Generator().manual_seed(0))
        return sum(t.numel() * t.element_size() for params in draw.params for t in params.values())

    def forward(self, x: torch.Tensor, draw: TransformDraw | None = None, generator: Generators = None) -> torch.Tensor:
        """Transform a batch (B, C, H, W); replay ``draw`` if given, else draw new parameters.

        Args:
            x: Images, float tensor (B, C, H, W).
            draw: A previous :attr:`last_draw` (or :meth:`sample`) of this stack, for the same input shape.
            generator: Where new draws come from (see :meth:`sample`); ignored when ``draw`` is given.
        """
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ImageError(f"transforms expect a float image batch of shape (B, C, H, W), got {got}")
        if draw is None:
            draw = self.sample(x.shape, generator)
        else:
            if draw.spec != self.spec:
                raise SpecError(f"cannot replay a draw of transforms {draw.spec!r} on transforms {self.spec!r}")
            if tuple(draw.shape) != tuple(x.shape):
                raise ImageError(
                    f"the draw was made for a batch of shape {tuple(draw.shape)}, got {tuple(x.shape)}; "
                    "replay needs a batch of the same shape"
                )
        runs = self._affine_runs()
        i = 0
        while i < len(self.ops):
            if i not in runs:
                x = self.ops[i].apply(x, draw.params[i])
                i += 1
                continue
            linear = draw.warps[i] if draw.warps else None
            if linear is not None and linear.dtype == x.dtype and linear.device == x.device:
                x = warp_about_centre(x, linear)  # made with the draw, ahead of the step
            else:
                x = affine_about_centre(x, *self._fused(runs[i], draw.params))
            i = runs[i].stop
        self.last_draw = draw
        return x

    def extra_repr(self) -> str:
        return f"preset={self.preset!r}" if self.preset else ""


def _unknown_op(name: str, token: str) -> SpecError:
    choices = [*TRANSFORM_OPS.names(), *TRANSFORM_PRESETS.names()]
    near = close_matches(name, choices)
    hint = f"did you mean {', '.join(repr(n) for n in near)}? " if near else ""
    return SpecError(
        f"transform spec {token!r}: unknown op {name!r}; {hint}expected one of the ops "
        f"{', '.join(TRANSFORM_OPS.names())} or the presets {', '.join(TRANSFORM_PRESETS.names())} "
        f"(e.g. {_EXAMPLE!r})"
    )


def parse_transforms(spec: str) -> list[Transform]:
    """Parse a comma-separated spec string into ops; a preset name may appear as a token.

    Raises:
        SpecError: Naming the bad token, what was expected and an example.
    """
    if not isinstance(spec, str):
        raise SpecError(f"transform spec must be a string, got {type(spec).__name__} (e.g. {_EXAMPLE!r})")
    if not spec.strip():
        raise SpecError(
            f"empty transform spec; expected a preset ({', '.join(TRANSFORM_PRESETS.names())}) or ops such as "
            f"{_EXAMPLE!r}"
        )
    ops: list[Transform] = []
    for position, raw in enumerate(spec.split(","), start=1):
        token = raw.strip()
        if not token:
            raise SpecError(
                f"transform spec {spec!r}: op {position} is empty; expected comma-separated ops without "
                f"empty entries (e.g. {_EXAMPLE!r})"
            )
        name, *args = (part.strip() for part in token.split(":"))
        name = name.lower()
        if name == "none" and not args:
            continue
        if name in TRANSFORM_PRESETS and not args:
            ops.extend(parse_transforms(TRANSFORM_PRESETS.get(name)))
            continue
        if name not in TRANSFORM_OPS:
            raise _unknown_op(name, token)
        ops.append(TRANSFORM_OPS.get(name).parse(args, token))
    return ops


def build_transforms(spec: str) -> TransformStack:
    """Build a :class:`TransformStack` from a preset name or a spec string.

    Args:
        spec: ``none``, ``jitter``, ``lucid`` or ops such as ``"pad:12,jitter:8,scale:0.9-1.1,rotate:10"``
            (grammar in :mod:`paramviz.transforms`).

    Raises:
        SpecError: For a malformed spec, naming the bad token, what was expected and an example.
    """
    ops = parse_transforms(spec)
    name = spec.strip().lower()
    return TransformStack(ops, preset=name if name in TRANSFORM_PRESETS else None)
