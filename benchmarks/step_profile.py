"""Where a ``render()`` step's time goes, measured inside real steps (in situ), part by part.

``render()`` itself runs; its parts are timed by wrapping them for the run: the parameterization's forward, the
transform stack's forward, the backbone's forward, the objective, the backward pass (``Tensor.backward``), the
optimizer update, and the rest of the step (draws, logging, the step record: what is left of the wall time). Each
wrapper adds about a microsecond. In situ, right after the network, small ops and Python run with cold caches and
cost several times what they cost in a warm loop, which is why ``step_overhead.py``'s ratios exceed the sum of
the parts' warm costs. Medians over the timed steps (CUDA synchronized around each part).

    python benchmarks/step_profile.py --size 128 --arm fourier/lucid
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator

import click
import torch
from step_overhead import (  # run as a script: benchmarks/ is on the path
    default_weights,
    network_options,
    synchronize,
    truncated_network,
)

from paramviz.backbones import build_backbone
from paramviz.device import resolve_device
from paramviz.host_memory import keep_freed_memory
from paramviz.objectives import Channel
from paramviz.optim import FusedAdam
from paramviz.params import ParamSpec, build_param
from paramviz.render import StepRecord, render
from paramviz.transforms import build_transforms

PARTS = ("parameterization", "transforms", "backbone forward", "objective", "backward", "optimizer", "rest of step")


class PartTimer:
    """Accumulates the time of each wrapped part within the current step."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.current: dict[str, float] = {}
        self.steps: list[dict[str, float]] = []

    def wrap(self, name: str, func: Callable) -> Callable:
        """``func`` timed as part ``name`` (CUDA synchronized before and after)."""

        def timed(*args, **kwargs):
            synchronize(self.device)
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                synchronize(self.device)
                self.current[name] = self.current.get(name, 0.0) + time.perf_counter() - start

        return timed

    def end_step(self, wall: float) -> None:
        """Close the step: its wall time less the timed parts is the rest of the step."""
        self.current["rest of step"] = wall - sum(self.current.values())
        self.steps.append(self.current)
        self.current = {}


@contextlib.contextmanager
def patched(obj: object, name: str, value: object) -> Iterator[None]:
    """Set ``obj.name`` to ``value`` for the block."""
    had, old = name in vars(obj), getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        if had:
            setattr(obj, name, old)
        else:
            delattr(obj, name)


@click.command()
@network_options
@click.option("--arm", default="fourier/lucid", show_default=True, help="param/transforms, e.g. pixel/none.")
@click.option("--steps", default=60, show_default=True, help="Steps of the run (the first 10 are not timed).")
def main(backbone: str, weights: str | None, layer: str, size: int, batch: int, device: str, arm: str, steps: int):
    """Print the median time of each part of a render() step, measured inside the steps."""
    skip = 10
    if steps <= skip:
        raise click.BadParameter(f"need more than {skip} steps (the first {skip} are not timed), got {steps}")
    if arm.count("/") != 1:
        raise click.BadParameter(f"expected param/transforms, e.g. fourier/lucid, got {arm!r}")
    keep_freed_memory()  # what render() applies: set before anything runs, as in step_overhead.py
    dev = resolve_device(device)
    torch.manual_seed(0)
    weights = default_weights(backbone, weights)
    bb = build_backbone(backbone, weights).to(dev)
    param_name, transforms_name = arm.split("/")
    param = build_param(ParamSpec(param_name), (size, size), batch=batch, seed=0)
    transforms = build_transforms(transforms_name)
    objective = Channel(layer, 0)
    timer = PartTimer(dev)
    last = [0.0]

    def on_step(record: StepRecord) -> None:
        synchronize(dev)
        now = time.perf_counter()
        if record.step > skip:
            timer.end_step(now - last[0])
        else:
            timer.current = {}
        last[0] = time.perf_counter()

    with contextlib.ExitStack() as stack:
        stack.enter_context(patched(param, "forward", timer.wrap("parameterization", param.forward)))
        stack.enter_context(patched(transforms, "forward", timer.wrap("transforms", transforms.forward)))
        stack.enter_context(patched(bb, "forward", timer.wrap("backbone forward", bb.forward)))
        stack.enter_context(patched(objective, "evaluate", timer.wrap("objective", objective.evaluate)))
        stack.enter_context(patched(torch.Tensor, "backward", timer.wrap("backward", torch.Tensor.backward)))
        stack.enter_context(patched(FusedAdam, "update", timer.wrap("optimizer", FusedAdam.update)))
        synchronize(dev)
        last[0] = time.perf_counter()
        render(param, transforms, bb, objective, steps=steps, callbacks=[on_step], device=dev)
    bare = bare_parts(bb, layer, batch, transforms.output_size((size, size))[0], dev, len(timer.steps))
    total = statistics.median(sum(step.values()) for step in timer.steps)
    print(
        f"backbone={backbone} ({weights}) layer={layer} size={size} batch={batch} device={dev} arm={arm} "
        f"timed steps={len(timer.steps)} threads={torch.get_num_threads()}"
    )
    print(f"{'part':18s} {'median ms':>10s} {'share':>7s}")
    for part in PARTS:
        values = [step.get(part, 0.0) for step in timer.steps]
        median = statistics.median(values)
        print(f"{part:18s} {median * 1000:10.3f} {median / total:7.1%}")
    print(f"{'step':18s} {total * 1000:10.3f}")
    for part, median in bare.items():
        print(f"{part:18s} {median * 1000:10.3f} {median / total:7.1%}")
    print("parts are timed inside render() steps; 'backward' is the whole backward pass (network and glue); the")
    print("bare rows: the truncated network alone (no normalization; BatchNorm folded as the backbone folds it) on")
    print("an input of the size the network is fed, steps back to back, for what the network itself costs of")
    print("'backbone forward' and 'backward'.")


def bare_parts(bb, layer: str, batch: int, side: int, device: torch.device, steps: int) -> dict[str, float]:
    """Median forward and backward times of the bare truncated network, steps back to back.

    With the backbone's BatchNorm folding in place when it folds (as in the render steps), so that the rows are
    what the network itself costs of the steps.
    """
    path = bb.resolve(layer)
    x = torch.rand(batch, 3, side, side, device=device, requires_grad=True)
    folding = bb.folding((side, side))
    plan = bb.fold_plan((side, side), [path])
    forward, backward = [], []
    for i in range(steps + 3):
        synchronize(device)
        start = time.perf_counter()
        with folding.applied(plan) if folding is not None else contextlib.nullcontext():
            loss = truncated_network(bb.model, path).eval()(x)[:, 0].mean().neg()
        synchronize(device)
        middle = time.perf_counter()
        loss.backward()
        synchronize(device)
        if i >= 3:  # warm-up
            forward.append(middle - start)
            backward.append(time.perf_counter() - middle)
        x.grad = None
    return {f"bare forward@{side}": statistics.median(forward), f"bare backward@{side}": statistics.median(backward)}


if __name__ == "__main__":
    main()
