"""Overhead of one paramviz optimization step over the bare network cost.

Bare cost: the same network truncated at the layer (torchvision's FX feature extractor, no paramviz code),
forward of a leaf input batch plus backward to that input. paramviz step: parameterization -> transform
stack -> Backbone (hooks, early stop) -> objective -> backward -> Adam update. Both are timed in the same
process, interleaved, and the ratio of medians is printed. Target: <= 1.15 for fourier + lucid on
EfficientNet-Lite0 at 224 px on CPU.

    python benchmarks/step_overhead.py --backbone efficientnet_lite0 --layer stage4 --size 224
"""

from __future__ import annotations

import statistics
import time

import click
import torch
from torchvision.models.feature_extraction import create_feature_extractor

from paramviz.backbones import build_backbone
from paramviz.objectives import Channel
from paramviz.params import ParamSpec, build_param
from paramviz.render import INPUT_KEY
from paramviz.transforms import build_transforms


def bare_step(extractor: torch.nn.Module, node: str, x: torch.Tensor) -> None:
    x.grad = None
    out = extractor(x)[node]
    out[:, 0].mean().neg().backward()


@click.command()
@click.option("--backbone", default="efficientnet_lite0", show_default=True)
@click.option("--layer", default="stage4", show_default=True)
@click.option("--size", default=224, show_default=True)
@click.option("--batch", default=1, show_default=True)
@click.option("--repeats", default=30, show_default=True, help="Timed steps per configuration.")
@click.option("--arm", "arms", multiple=True, help="param/transforms pairs, e.g. fourier/lucid (repeatable).")
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
def main(
    backbone: str, layer: str, size: int, batch: int, repeats: int, arms: tuple[str, ...], threads: int | None
) -> None:
    """Print the median step time of each arm and its ratio to the bare forward+backward."""
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    bb = build_backbone(backbone, "pretrained" if backbone == "efficientnet_lite0" else "random")
    path = bb.resolve(layer)
    extractor = create_feature_extractor(bb.model, return_nodes={path: "out"}).eval()
    arms = arms or ("fourier/lucid", "fourier/none", "pixel/none")
    objective = Channel(layer, 0)
    runners = {}
    for arm in arms:
        param_name, transforms_name = arm.split("/")
        param = build_param(ParamSpec(param_name), (size, size), batch=batch, seed=0)
        transforms = build_transforms(transforms_name)
        opt = torch.optim.Adam(param.parameters(), lr=0.05)

        def step(param=param, transforms=transforms, opt=opt) -> None:
            opt.zero_grad(set_to_none=True)
            image = transforms(param())
            features = bb(image, [layer])
            features[INPUT_KEY] = image
            total, _ = objective.evaluate(features)
            total.sum().backward()
            opt.step()

        runners[arm] = step
    x = torch.rand(batch, 3, size, size, requires_grad=True)
    # The bare network sees the normalized input, as inside Backbone; normalization is part of the overhead.
    runners["bare"] = lambda: bare_step(extractor, "out", x)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for fn in runners.values():  # warm-up
        for _ in range(3):
            fn()
    for _ in range(repeats):
        for name, fn in runners.items():  # interleaved so drifts in machine load hit every arm alike
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    bare = statistics.median(times["bare"])
    print(
        f"backbone={backbone} layer={layer} ({path}) size={size} batch={batch} repeats={repeats} "
        f"threads={torch.get_num_threads()} torch={torch.__version__}"
    )
    print(f"{'arm':18s} {'median ms':>10s} {'ratio':>7s}")
    for name in runners:
        median = statistics.median(times[name])
        print(f"{name:18s} {median * 1000:10.1f} {median / bare:7.3f}")


if __name__ == "__main__":
    main()
