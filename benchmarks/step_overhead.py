"""Overhead of one paramviz optimization step over the bare network cost.

Bare cost: the same network truncated at the layer (cut by hand for known layouts, else torchvision's FX
feature extractor; no paramviz code), forward of a leaf input batch plus backward to that input. paramviz step:
``render()`` itself (parameterization -> transform stack -> Backbone (hooks, early stop) -> objective ->
backward -> Adam update -> step record), timed per step by a callback (CUDA synchronized around each step).
Blocks of render steps alternate with blocks of bare steps made right after them (so a drift in the machine's
speed hits both alike), and the median of the per-block ratios is printed, with its interquartile range:
against the bare network at the rendered size, and at the size the transforms hand the network (lucid's pad and
crops make 224 px into 236 px). The backbone folds its BatchNorms into the convolutions (``Backbone.fold_batchnorm``,
on by default; ``--no-fold-batchnorm`` turns it off): the bare network is the network as built (the issue's
floor), and ``folded@N`` rows time it with the same folding, so ``ratio@folded`` is paramviz's glue alone.
``--compile`` also times the bare network under ``torch.compile``: the most
compiling the backbone could save. The backbone's weights are laid out as ``--memory-format`` says (default
``auto``, what ``render()`` does: channels-last on the CPU), and the bare network, cut from the same modules,
shares them. Targets (issue 10): <= 1.10 at the fed size at 224 px and <= 1.25 at 128 px
(fourier + lucid), pixel + none <= 1.05.

    python benchmarks/step_overhead.py --backbone efficientnet_lite0 --layer stage4 --size 224
    python benchmarks/step_overhead.py --backbone resnet50 --layer layer2 --size 128 --batch 4 --device cuda
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable

import click
import torch
from torchvision.models.feature_extraction import create_feature_extractor

from paramviz.backbones import build_backbone
from paramviz.backbones.fold import BatchNormFolding
from paramviz.backbones.memory_format import DEFAULT_MEMORY_FORMAT, MEMORY_FORMATS
from paramviz.backbones.options import DEFAULT_FOLD_BATCHNORM
from paramviz.device import resolve_device
from paramviz.host_memory import keep_freed_memory
from paramviz.objectives import Channel
from paramviz.params import ParamSpec, build_param
from paramviz.render import StepRecord, render
from paramviz.transforms import build_transforms


def truncated_network(model: torch.nn.Module, path: str) -> torch.nn.Module:
    """The network cut after module ``path``, built without paramviz: a plain Sequential of its stages.

    Known layouts (timm EfficientNet ``blocks.N``, torchvision ResNet ``layerN``, VGG ``features.N``) are cut
    by hand; anything else goes through torchvision's FX feature extractor.
    """
    children = dict(model.named_children())
    if "blocks" in children and path.startswith("blocks.") and path.count(".") == 1:  # timm EfficientNet
        k = int(path.split(".")[1])
        return torch.nn.Sequential(model.conv_stem, model.bn1, *list(model.blocks)[: k + 1])
    if "layer1" in children and path.startswith("layer") and "." not in path:  # torchvision ResNet
        k = int(path[len("layer") :])
        stages = [getattr(model, f"layer{i}") for i in range(1, k + 1)]
        return torch.nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool, *stages)
    if path.startswith("features.") and path.count(".") == 1:  # VGG / AlexNet
        return model.features[: int(path.split(".")[1]) + 1]
    extractor = create_feature_extractor(model, return_nodes={path: "out"})
    return _Select(extractor)


class _Select(torch.nn.Module):
    def __init__(self, extractor: torch.nn.Module) -> None:
        super().__init__()
        self.extractor = extractor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.extractor(x)["out"]


def bare_step(network: torch.nn.Module, x: torch.Tensor) -> None:
    x.grad = None
    network(x)[:, 0].mean().neg().backward()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepTimer:
    """A render callback that keeps the wall time of every step after the first ``skip`` (CUDA synchronized)."""

    def __init__(self, device: torch.device, skip: int) -> None:
        self.device, self.skip = device, skip
        self.times: list[float] = []
        self.last: float | None = None

    def __call__(self, record: StepRecord) -> None:
        synchronize(self.device)
        now = time.perf_counter()
        if self.last is not None and record.step > self.skip:
            self.times.append(now - self.last)
            self.timed()
        self.last = time.perf_counter()  # whatever timed() ran is not part of the next step

    def timed(self) -> None:
        """Called after each timed step; nothing here."""


class PairedTimer(StepTimer):
    """A render callback that times render steps in blocks, each block followed by as many steps of every floor.

    Blocks of render steps alternate with blocks of bare steps made right after them, so a drift in the
    machine's speed (other load, clocks) hits both alike, while each side still runs back to back as it would
    alone (a step-by-step alternation would make every render step start with the bare network's data in the
    caches). CUDA is synchronized around every timed step; the ratio is taken per block.
    """

    def __init__(self, device: torch.device, skip: int, block: int, floors: dict[str, Callable[[], None]]) -> None:
        super().__init__(device, skip)
        self.block, self.floors = block, floors
        self.render: list[float] = []  # one mean step time per block
        self.bare: dict[str, list[float]] = {name: [] for name in floors}

    def timed(self) -> None:
        if len(self.times) % self.block:
            return
        self.render.append(statistics.fmean(self.times[-self.block :]))
        for name, step in self.floors.items():
            synchronize(self.device)
            start = time.perf_counter()
            for _ in range(self.block):
                step()
            synchronize(self.device)
            self.bare[name].append((time.perf_counter() - start) / self.block)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16/fp16 autocast on CUDA for ``--precision`` (fp32: nothing)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if device.type != "cuda":
        raise SystemExit(f"--precision {precision} is measured on CUDA only")
    return torch.autocast("cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def time_render(bb, objective, arm, size, batch, steps, skip, block, device, precision, floors) -> PairedTimer:
    """Block times of ``render()`` itself, each paired with a block of every floor (after ``skip`` steps)."""
    param_name, transforms_name = arm.split("/")
    param = build_param(ParamSpec(param_name), (size, size), batch=batch, seed=0)
    timer = PairedTimer(device, skip, block, floors)
    synchronize(device)
    with autocast(device, precision):
        render(param, build_transforms(transforms_name), bb, objective, steps=steps, callbacks=[timer], device=device)
    return timer


def bare_floor(network, batch: int, side: int, device: torch.device, precision: str) -> Callable[[], None]:
    """One bare step (forward to the layer, backward to the input) on a fixed input of ``side`` px."""
    x = torch.rand(batch, 3, side, side, device=device, requires_grad=True)

    def step() -> None:
        with autocast(device, precision):
            bare_step(network, x)

    return step


def folded_floor(
    folding: BatchNormFolding,
    plan: tuple,
    model: torch.nn.Module,
    path: str,
    batch: int,
    side: int,
    device: torch.device,
    precision: str,
) -> Callable[[], None]:
    """One bare step with the backbone's BatchNorm folding in place, as render() has it.

    ``plan`` is :meth:`Backbone.fold_plan`'s. The cut is rebuilt inside the swap, so that it holds the stand-ins of
    the stem's normalizations too (a hand cut costs microseconds).
    """
    x = torch.rand(batch, 3, side, side, device=device, requires_grad=True)

    def step() -> None:
        with folding.applied(plan), autocast(device, precision):
            bare_step(truncated_network(model, path), x)

    return step


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """25th, 50th and 75th percentiles."""
    q1, q2, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else (values[0],) * 3
    return q1, q2, q3


def network_options(func: Callable) -> Callable:
    """The options that pick what is rendered: ``--backbone --weights --layer --size --batch --device``."""
    for option in reversed(
        (
            click.option("--backbone", default="efficientnet_lite0", show_default=True),
            click.option("--weights", default=None, help="Default: pretrained for efficientnet_lite*, else random."),
            click.option("--layer", default="stage4", show_default=True),
            click.option("--size", default=224, show_default=True),
            click.option("--batch", default=1, show_default=True),
            click.option("--device", default="auto", show_default=True),
        )
    ):
        func = option(func)
    return func


def default_weights(backbone: str, weights: str | None) -> str:
    """``--weights``, else the bundled pretrained weights for EfficientNet-Lite and random ones otherwise."""
    return weights or ("pretrained" if backbone.startswith("efficientnet_lite") else "random")


@click.command()
@network_options
@click.option("--param", "params", multiple=True, help="Parameterization(s) (default: fourier and pixel).")
@click.option("--transforms", "transforms_list", multiple=True, help="Transform stack(s) (default: lucid, none).")
@click.option("--arm", "arms", multiple=True, help="Explicit param/transforms pairs, e.g. fourier/lucid.")
@click.option("--steps", default=16, show_default=True, help="Timed steps per render call.")
@click.option("--block", default=4, show_default=True, help="Render steps per block (each paired with bare steps).")
@click.option("--rounds", default=3, show_default=True, help="Render calls per arm (arms interleaved).")
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default="fp32", show_default=True)
@click.option(
    "--memory-format",
    type=click.Choice(MEMORY_FORMATS),
    default=DEFAULT_MEMORY_FORMAT,
    show_default=True,
    help="Layout of the backbone's weights (Backbone.memory_format); the bare network shares them.",
)
@click.option(
    "--fold-batchnorm/--no-fold-batchnorm",
    default=DEFAULT_FOLD_BATCHNORM,
    show_default=True,
    help="Fold BatchNorm into the convolutions in render() (Backbone.fold_batchnorm); rows 'folded@N' time the "
    "bare network with the same folding.",
)
@click.option(
    "--return-memory",
    is_flag=True,
    help="Let malloc hand freed memory back to the OS as by default (PARAMVIZ_KEEP_FREED_MEMORY=0), instead of "
    "paramviz.host_memory.keep_freed_memory(), which render() applies.",
)
@click.option(
    "--compile",
    "compile_network",
    is_flag=True,
    help="Also time the bare network compiled with torch.compile (rows 'compiled@N'; compile time printed): "
    "the most compiling the truncated backbone could save a render step.",
)
def main(
    backbone: str,
    weights: str | None,
    layer: str,
    size: int,
    batch: int,
    device: str,
    params: tuple[str, ...],
    transforms_list: tuple[str, ...],
    arms: tuple[str, ...],
    steps: int,
    block: int,
    rounds: int,
    threads: int | None,
    precision: str,
    memory_format: str,
    fold_batchnorm: bool,
    return_memory: bool,
    compile_network: bool,
) -> None:
    """Print the median step time of render() for each arm and its ratio to the bare forward+backward."""
    if threads:
        torch.set_num_threads(threads)
    if return_memory:
        os.environ["PARAMVIZ_KEEP_FREED_MEMORY"] = "0"
    kept = keep_freed_memory()  # before anything is timed: the bare steps run under the same malloc settings
    dev = resolve_device(device)
    torch.manual_seed(0)
    weights = default_weights(backbone, weights)
    bb = build_backbone(backbone, weights).to(dev)
    bb.memory_format = memory_format
    bb.fold_batchnorm = fold_batchnorm
    channels_last = bb.arrange(dev)  # before render() would: the bare network is cut from the same modules
    path = bb.resolve(layer)
    bare_network = truncated_network(bb.model, path).eval().to(dev)
    with torch.no_grad():  # the cut must compute exactly the layer paramviz returns
        probe = torch.rand(1, 3, size, size, device=dev)
        expected = bb(probe, [layer])[layer]  # (folded: equal up to rounding, relative to the layer's scale)
        atol = 1e-4 * float(expected.abs().max())
        if not torch.allclose(bare_network(bb.normalize(probe)), expected, rtol=1e-4, atol=atol):
            raise SystemExit(f"the bare truncated network does not reproduce layer {layer!r}")
    if not arms:
        arms = tuple(
            f"{p}/{t}" for p in (params or ("fourier", "pixel")) for t in (transforms_list or ("lucid", "none"))
        )
    objective = Channel(layer, 0)
    skip = 2
    seen_size = {arm: build_transforms(arm.split("/")[1]).output_size((size, size))[0] for arm in arms}
    sides = sorted({size, *seen_size.values()})
    floors = {f"bare@{side}": bare_floor(bare_network, batch, side, dev, precision) for side in sides}
    folding = bb.folding((size, size))
    hand_cut = isinstance(bare_network, torch.nn.Sequential)
    if folding is not None and folding.folds and hand_cut:
        with torch.no_grad(), folding.applied(bb.fold_plan((size, size), [path])):
            if not torch.allclose(truncated_network(bb.model, path)(bb.normalize(probe)), expected, atol=atol):
                raise SystemExit(f"the folded bare network does not reproduce layer {layer!r}")
        for side in sides:
            plan = bb.fold_plan((side, side), [path])
            floors[f"folded@{side}"] = folded_floor(folding, plan, bb.model, path, batch, side, dev, precision)
    compile_seconds = 0.0
    if compile_network:
        compiled = torch.compile(bare_network, dynamic=False)
        for side in sides:  # one graph per input size, compiled by its first forward and backward
            floors[f"compiled@{side}"] = bare_floor(compiled, batch, side, dev, precision)
            start = time.perf_counter()
            floors[f"compiled@{side}"]()
            synchronize(dev)
            compile_seconds += time.perf_counter() - start
    for step in floors.values():  # warm-up
        step()
    render_times: dict[str, list[float]] = {arm: [] for arm in arms}
    ratios: dict[str, dict[str, list[float]]] = {arm: {name: [] for name in floors} for arm in arms}
    bare_times: dict[str, list[float]] = {name: [] for name in floors}
    for _ in range(rounds):  # arms interleaved, and every render step paired with a step of each floor
        for arm in arms:
            timer = time_render(bb, objective, arm, size, batch, steps + skip, skip, block, dev, precision, floors)
            render_times[arm] += timer.render
            for name, values in timer.bare.items():
                bare_times[name] += values
                ratios[arm][name] += [r / b for r, b in zip(timer.render, values, strict=True)]
    layout = f" {memory_format}: {'channels_last' if channels_last else 'contiguous'}"
    folded = f"{len(folding.folds)} BatchNorms folded" if folding is not None else "BatchNorm not folded"
    print(
        f"backbone={backbone} ({weights}) layer={layer} ({path}) size={size} batch={batch} device={dev} "
        f"{precision}{layout} {folded} freed memory {'kept' if kept else 'returned'} "
        f"steps={rounds}x{steps} threads={torch.get_num_threads()} torch={torch.__version__}"
    )
    has_folded = any(name.startswith("folded@") for name in floors)
    print(
        f"{'arm':18s} {'net input':>9s} {'median ms':>10s} {'ratio':>7s} {'ratio@same input':>17s} {'IQR':>13s}"
        + (f" {'ratio@folded':>13s}" if has_folded else "")
    )
    for arm in arms:
        side = seen_size[arm]
        nominal = statistics.median(ratios[arm][f"bare@{size}"])
        q1, same, q3 = quartiles(ratios[arm][f"bare@{side}"])
        median = statistics.median(render_times[arm])
        spread = f"{q1:.3f}-{q3:.3f}"
        glue = f" {statistics.median(ratios[arm][f'folded@{side}']):13.3f}" if has_folded else ""
        print(f"{arm:18s} {side:9d} {median * 1000:10.1f} {nominal:7.3f} {same:17.3f} {spread:>13s}{glue}")
    eager = {side: statistics.median(bare_times[f"bare@{side}"]) for side in sides}
    for name, values in bare_times.items():
        side = int(name.split("@")[1])
        median = statistics.median(values)
        print(f"{name:18s} {side:9d} {median * 1000:10.1f} {median / eager[size]:7.3f} {median / eager[side]:17.3f}")
    print(f"ratio: per block of {block} steps, render() over the bare network at the rendered size right after it")
    print("(median); ratio@same input: over the bare network on an input of the size the transforms hand it,")
    print("the overhead of paramviz over the network as built (median and interquartile range over the blocks);")
    if has_folded:
        print("ratio@folded: over the bare network at that size with the same BatchNorm folding (the glue alone).")
    if compile_network:
        print(f"compiled@N: the bare network under torch.compile (compiling took {compile_seconds:.1f} s); its")
        print("ratio@same input is its time over the eager bare network's: below 1 means compiling would save.")


if __name__ == "__main__":
    main()
