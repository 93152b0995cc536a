"""Overhead of one paramviz optimization step over the bare network cost.

Bare cost: the same network truncated at the layer (torchvision's FX feature extractor, no paramviz code),
forward of a leaf input batch plus backward to that input. paramviz step: parameterization -> transform
stack -> Backbone (hooks, early stop) -> objective -> backward -> Adam update. Both are timed in the same
process, interleaved, and the ratio of medians is printed, against the bare network at the rendered size and
at the size the transforms hand the network (lucid's pad and crops make 224 px into 236 px). Target: <= 1.15
for fourier + lucid on EfficientNet-Lite0 at 224 px on CPU.

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
    bare_network = truncated_network(bb.model, path).eval()
    with torch.no_grad():  # the cut must compute exactly the layer paramviz returns
        probe = torch.rand(1, 3, size, size)
        if not torch.allclose(bare_network(bb.normalize(probe)), bb(probe, [layer])[layer], atol=1e-5):
            raise SystemExit(f"the bare truncated network does not reproduce layer {layer!r}")
    arms = arms or ("fourier/lucid", "fourier/none", "pixel/none")
    objective = Channel(layer, 0)
    runners = {}
    seen_size: dict[str, int] = {}
    for arm in arms:
        param_name, transforms_name = arm.split("/")
        param = build_param(ParamSpec(param_name), (size, size), batch=batch, seed=0)
        transforms = build_transforms(transforms_name)
        seen_size[arm] = transforms.output_size((size, size))[0]
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
    # Bare cost at the rendered size, and at the size the network really sees after the transforms (padding
    # and crops change it: lucid turns 224 into 236), so the ratio can be split into "bigger input" and
    # "paramviz machinery". Normalization is left out of the bare step: it is part of paramviz's overhead.
    for side in sorted({size, *seen_size.values()}):
        x = torch.rand(batch, 3, side, side, requires_grad=True)
        runners[f"bare@{side}"] = lambda x=x: bare_step(bare_network, x)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for fn in runners.values():  # warm-up
        for _ in range(3):
            fn()
    for _ in range(repeats):
        for name, fn in runners.items():  # interleaved so drifts in machine load hit every arm alike
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    bare = statistics.median(times[f"bare@{size}"])
    print(
        f"backbone={backbone} layer={layer} ({path}) size={size} batch={batch} repeats={repeats} "
        f"threads={torch.get_num_threads()} torch={torch.__version__}"
    )
    print(f"{'arm':18s} {'net input':>9s} {'median ms':>10s} {'ratio':>7s} {'ratio@same input':>17s}")
    for name in runners:
        median = statistics.median(times[name])
        side = seen_size.get(name, int(name.split("@")[-1]) if name.startswith("bare@") else size)
        same = median / statistics.median(times[f"bare@{side}"])
        print(f"{name:18s} {side:9d} {median * 1000:10.1f} {median / bare:7.3f} {same:17.3f}")
    print("ratio: against the bare network at the rendered size; ratio@same input: against the bare network on")
    print("an input of the size the transforms hand it (the overhead of paramviz itself).")


if __name__ == "__main__":
    main()
