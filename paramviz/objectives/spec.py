"""Objective spec strings: the compact form the CLI reads (``--objective layer3:12``).

Grammar (one objective per string; :func:`parse_objectives` sums several)::

    SPEC     := [WEIGHT "*"] BODY | "-" [WEIGHT "*"] BODY            e.g. 0.5*tv, -layer3:12, 1e-2*l1
    BODY     := FORM ["@" IMAGE]                                      @I: only image I of the batch
                                                                      (not for diversity and penalties)

    LAYER:CHANNELS                       channel: mean activation of a channel over space
    LAYER:CHANNELS:X:Y                   neuron at column X, row Y
    channel:LAYER:CHANNELS               the same as LAYER:CHANNELS
    neuron:LAYER:CHANNELS[:X:Y]          neuron; the centre (W // 2, H // 2) when X:Y is left out
    neuron:LAYER:CHANNELS:token=T        neuron at row-major position T (on a transformer layer: patch token
                                         T, class/register tokens not counted)
    logit:CLASSES                        class logit of the `logits` layer; CLASS is an index (967) or an
    logit:LAYER:CLASSES                  ImageNet label (espresso, Egyptian cat: spaces allowed, no quotes)
    deepdream:LAYER                      DeepDream: mean squared activation
    diversity:LAYER                      Gram-matrix diversity across the batch (add with a positive weight)
    direction:LAYER:VECTOR[:cossim=P]    direction in channel space; VECTOR is a seed (an integer, or
    direction_neuron:LAYER:VECTOR[:X:Y][:cossim=P]   seed=N: a random unit vector) or values v1|v2|...
    l1[:TARGET[:LAYER]]  l2[:TARGET[:LAYER]]  tv[:LAYER]   image penalties (mean |x - t|, RMS, total variation)
    blur[:SIGMA[:LAYER]]                 pull the image towards its Gaussian blur (Lucid's blur_input_each_step)
    alignment:LAYER[:DECAY]              keep neighbouring images of the batch alike (Lucid; DECAY = 2)
    channel_interpolate:LAYER1:CH1:LAYER2:CH2   image i of B shows (1 - i/(B-1)) CH1 + i/(B-1) CH2
    input_diff:IMAGE                     RMS distance of the image to IMAGE
    inversion:LAYER:IMAGE                match IMAGE's activations at LAYER (feature inversion)
    caricature:LAYER:IMAGE[:POWER]       exaggerate IMAGE's activations at LAYER (torch-dreams; POWER = 1)

    IMAGE    := a file path or sample:NAME (everything after the layer, ':' included; read when the run
                starts, resized to the render size). A trailing :POWER of caricature is a number; image
                paths cannot contain '@' or '*'.

    CHANNELS := INT | INT|INT|...        a list gives one channel per image: layer3:3|7|9 needs 3 images
    CLASSES  := CLASS | CLASS|CLASS|...  one class per image, likewise

Layer names may contain dots (``layer3.1.conv2``) but not colons. Every objective is a loss (lower is
better), so a weight > 0 pursues the objective and a negative weight works against it; penalties and
diversity are added with small positive weights: ``layer3:12``, ``0.05*tv``, ``100*diversity:layer3``.

Objective names (:attr:`Objective.name`) are written in this grammar, so a logged name parses back to the
same objective (direction vectors longer than 8 values and reference images or targets given as tensors in
Python excepted).

Malformed specs raise :class:`~paramviz.errors.SpecError` naming the spec, the bad part and an example; an
unknown kind that looks like a misspelt one (``chanel:layer3:5``) raises
:class:`~paramviz.errors.UnknownNameError` with close matches.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

from paramviz.errors import ConfigError, SpecError, UnknownNameError, close_matches
from paramviz.objectives.activation import (
    OBJECTIVES,
    Alignment,
    Channel,
    ChannelInterpolate,
    ClassLogit,
    DeepDream,
    Direction,
    DirectionNeuron,
    Diversity,
    Neuron,
)
from paramviz.objectives.base import Objective
from paramviz.objectives.penalties import L1, L2, BlurPenalty, TotalVariation
from paramviz.objectives.reference import Caricature, InputDiff, Inversion

SPEC_HELP = """\
Objective specs (repeat the option to add terms; lower loss is better, weights multiply):
  LAYER:CH                   channel CH of LAYER (mean over space), e.g. layer3:12 (or channel:layer3:12)
  LAYER:CH:X:Y               neuron at column X, row Y, e.g. layer3:12:7:7
  neuron:LAYER:CH            neuron at the centre of the feature map (neuron:LAYER:CH:token=T: token T)
  LAYER:3|7|9                one channel per image of a batch of 3 (also for neuron and logit)
  LAYER:0-63 | LAYER:*       a whole layer: one image per channel (ranges inclusive; * = every channel),
                             each rendered on its own (seed + i) in batches that fit the memory; image.png
                             is a contact sheet, image_N.png one per unit
  logit:LABEL | logit:INDEX  class logit, e.g. logit:espresso, logit:967, logit:Egyptian cat
  deepdream:LAYER            DeepDream (mean squared activation)
  diversity:LAYER            batch diversity, e.g. 100*diversity:layer3
  direction:LAYER:SEED       random unit direction (or direction:LAYER:v1|v2|...; add :cossim=1)
  direction_neuron:LAYER:SEED[:X:Y]  the same at one position (the centre by default)
  l1, l2, tv                 image penalties, e.g. 0.05*tv, l1:0.5 (pull towards 0.5)
  blur[:SIGMA]               pull the image towards its Gaussian blur (SIGMA px, default 1), e.g. 0.5*blur
  alignment:LAYER[:DECAY]    keep neighbouring images alike (Lucid, decay 2), e.g. 10*alignment:layer3
  channel_interpolate:L1:C1:L2:C2  image i of B mixes channel C1 (weight 1 - i/(B-1)) and C2
  input_diff:IMAGE           distance to IMAGE (a path or sample:NAME, resized to --size)
  inversion:LAYER:IMAGE      match IMAGE's activations at LAYER, e.g. inversion:stage4:sample:chelsea
  caricature:LAYER:IMAGE[:P] exaggerate IMAGE's activations at LAYER (power P, default 1)
  W*SPEC, -SPEC, SPEC@I      weight, negate, only image I of the batch
  Transformer layers (timm ViT, Swin) are read on the patch grid, class/register tokens left out."""

_INT = re.compile(r"\d+")
#: A unit of a channel list: an index or an inclusive range ``LOW-HIGH``.
_UNIT = re.compile(r"\d+|\d+\s*-\s*\d+")
_COSSIM = re.compile(r"cossim=(.*)")
_TOKEN = re.compile(r"token=(.*)")

EXAMPLES = {
    "channel": "layer3:12 or channel:layer3:12",
    "neuron": "layer3:12:7:7 or neuron:layer3:12 or neuron:layer3:12:token=5",
    "logit": "logit:espresso or logit:967",
    "deepdream": "deepdream:layer3",
    "diversity": "100*diversity:layer3",
    "direction": "direction:layer3:0 or direction:layer3:1|0|-0.5:cossim=1",
    "direction_neuron": "direction_neuron:layer3:0 or direction_neuron:layer3:0:7:7",
    "l1": "l1 or 0.1*l1:0.5",
    "l2": "l2 or l2:0.5",
    "tv": "0.05*tv",
    "blur": "blur or 0.5*blur:2",
    "alignment": "10*alignment:layer3 or alignment:layer3:3",
    "channel_interpolate": "channel_interpolate:layer3:3:layer3:7",
    "input_diff": "input_diff:sample:chelsea or input_diff:photo.png",
    "inversion": "inversion:layer3:sample:chelsea or inversion:layer3:photo.png",
    "caricature": "caricature:layer3:sample:chelsea or caricature:layer3:photo.png:2",
}
"""One example per spec kind, shown in error messages."""


class _Spec:
    """The spec being parsed, for error messages."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.kind = ""

    def fail(self, problem: str, part: str) -> SpecError:
        example = EXAMPLES.get(self.kind, "layer3:12, logit:espresso or 0.05*tv")
        return SpecError(f"objective spec {self.text!r}: {problem} (bad part: {part!r}); e.g. {example}")

    def int(self, token: str, what: str) -> int:
        if not _INT.fullmatch(token):
            raise self.fail(f"{what} must be a non-negative integer", token)
        return int(token)

    def float(self, token: str, what: str) -> float:
        try:
            value = float(token)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise self.fail(f"{what} must be a finite number", token)
        return value

    def indices(self, token: str, what: str) -> int | list[int]:
        """``7``, ``3|7|9`` (one per image) or ranges ``0-63`` (inclusive), e.g. ``0-3|8``."""
        values: list[int] = []
        for part in (p.strip() for p in token.split("|")):
            if part == "*":
                raise self.fail(
                    f"'*' (every {what}) is resolved by `paramviz visualize` against the backbone; in Python use "
                    "paramviz.tasks.visualize.expand_whole_layers first",
                    token,
                )
            low, dash, high = part.partition("-")
            if dash:
                first, last = self.int(low.strip(), what), self.int(high.strip(), what)
                if last < first:
                    raise self.fail(f"the {what} range {part!r} runs backwards; write LOW-HIGH", token)
                values.extend(range(first, last + 1))
            else:
                values.append(self.int(part, what))
        return values[0] if len(values) == 1 else values

    def positive(self, token: str, what: str) -> float:
        value = self.float(token, what)
        if value <= 0:
            raise self.fail(f"{what} must be > 0", token)
        return value

    def image(self, parts: list[str]) -> str:
        text = ":".join(parts).strip()
        if not text:
            raise self.fail("the image is empty; give a file path or sample:NAME", ":".join(parts))
        return text

    def layer(self, token: str) -> str:
        if not token:
            raise self.fail("the layer name is empty", token)
        return token

    def count(self, args: list[str], allowed: Sequence[int], form: str) -> None:
        if len(args) not in allowed:
            part = ":".join(args) if args else self.kind
            raise self.fail(f"{self.kind} takes {form}", part)

    def at_least(self, args: list[str], minimum: int, form: str) -> None:
        if len(args) < minimum:
            raise self.fail(f"{self.kind} takes {form}", ":".join(args) if args else self.kind)


# --- one parser per kind: (spec, args after the kind, batch) -> Objective ------------------------
def _channel(spec: _Spec, args: list[str], batch: int | None) -> Objective:
    spec.count(args, (2,), "LAYER:CHANNEL")
    return Channel(spec.layer(args[0]), spec.indices(args[1], "channel"), batch=batch)


def _neuron(spec: _Spec, args: list[str], batch: int | None) -> Objective:
    token = None
    if len(args) == 3 and (match := _TOKEN.fullmatch(args[2])):
        token = spec.int(match.group(1).strip(), "neuron token index")
        args = args[:2]
    spec.count(args, (2, 4), "LAYER:CHANNEL, LAYER:CHANNEL:X:Y or LAYER:CHANNEL:token=T")
    x = y = None
    if len(args) == 4:
        x, y = spec.int(args[2], "neuron x"), spec.int(args[3], "neuron y")
    return Neuron(spec.layer(args[0]), spec.indices(args[1], "channel"), x, y, batch=batch, token=token)


def _logit(spec: _Spec, args: list[str], batch: int | None) -> Objective:
    spec.count(args, (1, 2), "CLASS or LAYER:CLASS (CLASS an index or an ImageNet label)")
    layer = spec.layer(args[0]) if len(args) == 2 else "logits"
    classes: list[int | str] = []
    for part in args[-1].split("|"):
        part = part.strip()
        if not part:
            raise spec.fail("a class is empty", args[-1])
        classes.append(int(part) if _INT.fullmatch(part) else part)
    return ClassLogit(classes[0] if len(classes) == 1 else classes, layer=layer, batch=batch)


def _deepdream(spec: _Spec, args: list[str], batch: int | None) -> Objective:
    spec.count(args, (1,), "LAYER")
    return DeepDream(spec.layer(args[0]), batch=batch)


def _diversity(spec: _Spec, args: list[str], batch: int | None) -> Objective:
    spec.count(args, (1,), "LAYER")
    return Diversity(spec.layer(args[0]))


def _direction_args(spec: _Spec, args: list[str]) -> tuple[list[str], dict[str, object]]:
    """Split off ``:cossim=P`` and parse the VECTOR token into ``vector=`` or ``seed=``."""
    kwargs: dict[str, object] = {}
    if args and (match := _COSSIM.fullmatch(args[-1])):
        kwargs["cossim_pow"] = spec.float(match.group(1), "cossim power")
        args = args[:-1]
    if len(args) >= 2:
        token = args[1]
        if token.startswith("seed="):
            kwargs["seed"] = spec.int(token[5:], "direction seed")
        elif _INT.fullmatch(token):
            kwargs["seed"] = int(token)
        else:
            kwargs["vector"] = [spec.float(p.strip(), "direction value") for p in token.split("|")]
    return args, kwargs


def _direction(spec: _Spec, args: list[str], batch: int | None) -> Objective:
    args, kwargs = _direction_args(spec, args)
    spec.count(args, (2,), "LAYER:SEED or LAYER:v1|v2|... (optionally :cossim=P)")
    return Direction(spec.layer(args[0]), batch=batch, **kwargs)  # type: ignore[arg-type]


def _direction_neuron(spec: _Spec, args: list[str], batch: int | None) -> Objective:
    args, kwargs = _direction_args(spec, args)
    spec.count(args, (2, 4), "LAYER:VECTOR or LAYER:VECTOR:X:Y (optionally :cossim=P)")
    if len(args) == 4:
        kwargs["x"], kwargs["y"] = spec.int(args[2], "x"), spec.int(args[3], "y")
    return DirectionNeuron(spec.layer(args[0]), batch=batch, **kwargs)  # type: ignore[arg-type]


def _alignment(spec: _Spec, args: list[str], batch: int | None) -> Objective:
    spec.count(args, (1, 2), "LAYER or LAYER:DECAY")
    decay = spec.positive(args[1], "the decay ratio") if len(args) == 2 else 2.0
    return Alignment(spec.layer(args[0]), decay)


def _channel_interpolate(spec: _Spec, args: list[str], batch: int | None) -> Objective:
    spec.count(args, (4,), "LAYER1:CHANNEL1:LAYER2:CHANNEL2")
    return ChannelInterpolate(
        spec.layer(args[0]), spec.int(args[1], "channel1"), spec.layer(args[2]), spec.int(args[3], "channel2")
    )


def _input_diff(spec: _Spec, args: list[str], batch: int | None) -> Objective:
    spec.at_least(args, 1, "IMAGE (a file path or sample:NAME)")
    return InputDiff(spec.image(args))


def _blur(spec: _Spec, args: list[str], batch: int | None) -> Objective:
    spec.count(args, (0, 1, 2), "no arguments, :SIGMA or :SIGMA:LAYER")
    if not args:
        return BlurPenalty()
    sigma = spec.positive(args[0], "the blur sigma")
    return BlurPenalty(sigma, spec.layer(args[1])) if len(args) == 2 else BlurPenalty(sigma)


def _inversion(spec: _Spec, args: list[str], batch: int | None) -> Objective:
    spec.at_least(args, 2, "LAYER:IMAGE (IMAGE a file path or sample:NAME)")
    return Inversion(spec.layer(args[0]), spec.image(args[1:]), batch=batch)


def _caricature(spec: _Spec, args: list[str], batch: int | None) -> Objective:
    spec.at_least(args, 2, "LAYER:IMAGE or LAYER:IMAGE:POWER (IMAGE a file path or sample:NAME)")
    power = 1.0
    if len(args) >= 3 and _is_number(args[-1]):
        power, args = spec.positive(args[-1], "the power"), args[:-1]
    return Caricature(spec.layer(args[0]), spec.image(args[1:]), power, batch=batch)


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _penalty(cls: type[L1] | type[L2]) -> Callable[[_Spec, list[str], int | None], Objective]:
    def parse(spec: _Spec, args: list[str], batch: int | None) -> Objective:
        spec.count(args, (0, 1, 2), "no arguments, :TARGET or :TARGET:LAYER")
        target = spec.float(args[0], "target") if args else 0.0
        return cls(target, spec.layer(args[1])) if len(args) == 2 else cls(target)

    return parse


def _tv(spec: _Spec, args: list[str], batch: int | None) -> Objective:
    spec.count(args, (0, 1), "no arguments or :LAYER")
    return TotalVariation(spec.layer(args[0])) if args else TotalVariation()


_PARSERS: dict[str, Callable[[_Spec, list[str], int | None], Objective]] = {
    "channel": _channel,
    "neuron": _neuron,
    "logit": _logit,
    "deepdream": _deepdream,
    "diversity": _diversity,
    "direction": _direction,
    "direction_neuron": _direction_neuron,
    "l1": _penalty(L1),
    "l2": _penalty(L2),
    "tv": _tv,
    "blur": _blur,
    "alignment": _alignment,
    "channel_interpolate": _channel_interpolate,
    "input_diff": _input_diff,
    "inversion": _inversion,
    "caricature": _caricature,
}
_NO_BATCH = {"diversity", "l1", "l2", "tv", "blur", "alignment", "channel_interpolate", "input_diff"}


def spec_kinds() -> list[str]:
    """Objective kinds that have a spec form, in registry order."""
    return [name for name in OBJECTIVES.names() if name in _PARSERS]


# --- public API ----------------------------------------------------------------------------------
def parse_objective(spec: str) -> Objective:
    """Parse one objective spec string (grammar in the module docstring) into an :class:`Objective`.

    Raises:
        SpecError: The spec is malformed; the message names the bad part and gives an example.
        UnknownNameError: The kind is unknown but close to a known one (a typo), or a class label is
            not an ImageNet label.
    """
    if not isinstance(spec, str):
        raise SpecError(f"objective spec must be a string, got {type(spec).__name__} {spec!r}")
    ctx = _Spec(spec)
    weight, body = _split_weight(ctx, spec.strip())
    body, batch = _split_batch(ctx, body)
    tokens = [t.strip() for t in body.split(":")]
    first = tokens[0]
    if first in OBJECTIVES and first not in _PARSERS:
        raise ctx.fail(f"objective {first!r} has no spec form; build it in Python or from a config", first)
    if first in _PARSERS:
        ctx.kind, args = first, tokens[1:]
    else:
        ctx.kind, args = _shorthand(ctx, tokens)
    if batch is not None and ctx.kind in _NO_BATCH:
        raise ctx.fail(f"{ctx.kind} acts on every image; it does not take @IMAGE", f"@{batch}")
    try:
        objective = _PARSERS[ctx.kind](ctx, args, batch)
    except SpecError:
        raise
    except ConfigError as exc:
        raise SpecError(f"objective spec {spec!r}: {exc}") from None
    return objective if weight == 1.0 else weight * objective


#: Spec kinds that read an image file, with how many ``:`` tokens (the layer) come between the kind and the image.
IMAGE_SPEC_KINDS = {"input_diff": 0, "inversion": 1, "caricature": 1}


def _image_span(spec: str) -> tuple[str, list[str], str, str] | None:
    """``(head, image tokens, tail, kind)`` of a spec that names an image, else ``None`` (see :func:`spec_image`)."""
    text = spec.strip()
    head = ""
    if text[:1] in "+-":  # a sign before the weight or the kind
        head, text = text[0], text[1:].lstrip()
    if "*" in text:  # the weight prefix W*
        weight, _, text = text.partition("*")
        head += weight + "*"
    tail = ""
    if "@" in text:
        text, _, index = text.rpartition("@")
        tail = "@" + index
    tokens = text.split(":")
    kind = tokens[0].strip()
    if kind not in IMAGE_SPEC_KINDS or len(tokens) < 2 + IMAGE_SPEC_KINDS[kind]:
        return None
    skip = 1 + IMAGE_SPEC_KINDS[kind]
    image = tokens[skip:]
    if kind == "caricature" and len(image) > 1 and re.fullmatch(r"[-+]?\d+(\.\d*)?([eE][-+]?\d+)?", image[-1].strip()):
        tail = ":" + image.pop() + tail  # caricature's power
    return head + ":".join(tokens[:skip]) + ":", image, tail, kind


def spec_image(spec: str) -> str | None:
    """The image a spec reads (``input_diff:IMAGE``, ``inversion:LAYER:IMAGE``, ``caricature:LAYER:IMAGE[:P]``)."""
    span = _image_span(spec)
    return ":".join(span[1]).strip() if span is not None else None


def map_spec_image(spec: str, fn: Callable[[str], str]) -> str:
    """``spec`` with its image replaced by ``fn(image)`` (e.g. a path made absolute); other specs unchanged."""
    span = _image_span(spec)
    if span is None:
        return spec
    head, image, tail, _ = span
    return head + fn(":".join(image).strip()) + tail


def parse_objectives(specs: Sequence[str] | str) -> Objective:
    """Parse several spec strings and return their sum (one flat :class:`WeightedSum` or a single leaf).

    Raises:
        SpecError: No spec was given, or one of them is malformed.
    """
    if isinstance(specs, str):
        specs = [specs]
    if len(specs) == 0:
        raise SpecError(f"no objective given; pass at least one spec, e.g. {EXAMPLES['channel']}")
    return sum((parse_objective(s) for s in specs), start=0)  # type: ignore[return-value]


# --- pieces --------------------------------------------------------------------------------------
def _split_weight(ctx: _Spec, text: str) -> tuple[float, str]:
    if not text:
        raise ctx.fail("the spec is empty", text)
    weight = 1.0
    if text[0] in "+-":
        weight = -1.0 if text[0] == "-" else 1.0
        text = text[1:].strip()
    if "*" in text:
        head, text = (part.strip() for part in text.split("*", 1))
        weight *= ctx.float(head, "the weight before '*'")
        if "*" in text:
            raise ctx.fail("only one weight prefix W*SPEC is allowed", text)
    if not text:
        raise ctx.fail("nothing follows the weight", ctx.text)
    if text[0] in "+-":
        raise ctx.fail("put the sign in front of the weight, e.g. -0.5*SPEC", text)
    return weight, text


def _split_batch(ctx: _Spec, text: str) -> tuple[str, int | None]:
    if "@" not in text:
        return text, None
    body, _, image = text.rpartition("@")
    return body.strip(), ctx.int(image.strip(), "the image index after '@'")


def _shorthand(ctx: _Spec, tokens: list[str]) -> tuple[str, list[str]]:
    """Read ``LAYER:CHANNELS`` (channel) or ``LAYER:CHANNELS:X:Y`` (neuron), else explain the error."""
    is_channels = len(tokens) >= 2 and all(_UNIT.fullmatch(p.strip()) for p in tokens[1].split("|"))
    if len(tokens) == 2 and is_channels:
        return "channel", tokens
    if len(tokens) == 4 and is_channels and all(_INT.fullmatch(t) for t in tokens[2:]):
        return "neuron", tokens
    first = tokens[0]
    kinds = spec_kinds()
    if close_matches(first, kinds):
        raise UnknownNameError("objective kind", first, kinds, "`paramviz visualize --help` lists the spec forms")
    if len(tokens) == 1:
        raise ctx.fail(f"{first!r} is neither an objective kind ({', '.join(kinds)}) nor LAYER:CHANNEL", first)
    if not is_channels:
        ctx.kind = "channel"
        raise ctx.fail(
            f"{first!r} is not an objective kind, so it is read as a layer and the channel must be an "
            "integer, a list like 3|7|9 or a range like 0-63",
            next(p.strip() for p in tokens[1].split("|") if not _UNIT.fullmatch(p.strip())),
        )
    ctx.kind = "neuron"
    if len(tokens) == 3:
        raise ctx.fail("a neuron needs both X and Y: LAYER:CHANNEL:X:Y", ":".join(tokens[1:]))
    if len(tokens) > 4:
        raise ctx.fail("too many ':'-separated parts for LAYER:CHANNEL:X:Y", ":".join(tokens[4:]))
    bad = next(t for t in tokens[2:] if not _INT.fullmatch(t))
    raise ctx.fail("expected LAYER:CHANNEL:X:Y with integer X and Y", bad)
