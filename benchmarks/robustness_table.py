"""R(f) of the first four stages of EfficientNet-Lite0 (ImageNet weights) and of a random-weight ResNet-50.

Usage::

    python benchmarks/robustness_table.py [--norm l2] [--eps 3] [--steps 20] [--size 224] [--device auto]
                                          [--out DIR]

(with paramviz installed, e.g. ``pip install -e .``, or ``PYTHONPATH=.``). Defaults are those of
``paramviz robustness``: PGD in the L2 ball of radius 3 (pixel values in [0, 1]), 20 steps of
2.5 * eps / steps, no random start, best iterate per image, scikit-image's six photos resized and
center-cropped to 224 px, seed 0. EfficientNet-Lite0 uses its bundled ImageNet weights; the ResNet-50 is
randomly initialized from the seed (no download). Prints the table as text and Markdown; ``--out`` also
writes the CSV/JSON/PNG outputs.
"""

from __future__ import annotations

import argparse
import time

from tqdm.auto import tqdm

from paramviz.tasks.robustness import RobustnessConfig, compute_robustness, format_table, run_robustness

LITE0 = "efficientnet_lite0"
RESNET = "resnet50@random"
LAYERS = (f"{LITE0}=stage0,stage1,stage2,stage3", f"{RESNET}=layer1,layer2,layer3,layer4")


def markdown(result) -> str:
    lines = [
        "| backbone | layer | R(f) | std over images | E max ‖f(x')−f(x)‖ | E ‖f(x1)−f(x2)‖ |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in result.rows():
        lines.append(
            f"| {row['backbone']} | {row['layer']} | {row['r']:.4f} | {row['r_std']:.4f} | "
            f"{row['adversarial_distance']:.4g} | {row['pairwise_distance']:.4g} |"
        )
    return "\n".join(lines)


def main() -> None:
    d = RobustnessConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--norm", default=d.norm, choices=("l2", "linf"))
    parser.add_argument("--eps", type=float, default=None)
    parser.add_argument("--steps", type=int, default=d.steps)
    parser.add_argument("--size", type=int, default=d.size)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--device", default=d.device)
    parser.add_argument("--out", default=None, help="also write robustness.csv/json/png here")
    args = parser.parse_args()
    config = RobustnessConfig(
        backbones=(LITE0, RESNET),
        layers=LAYERS,
        norm=args.norm,
        eps=args.eps,
        steps=args.steps,
        size=args.size,
        seed=args.seed,
        device=args.device,
    )
    bar = tqdm(total=None, unit="step", desc="R(f)")

    def progress(event) -> None:
        bar.total = event.total
        bar.set_postfix_str(f"{event.backbone} {event.layer}", refresh=False)
        bar.update(event.done - bar.n)

    start = time.perf_counter()
    if args.out:
        result = run_robustness(config, args.out, progress=progress)
    else:
        result = compute_robustness(config, progress=progress)
    bar.close()
    print(format_table(result))
    print()
    print(markdown(result))
    per_backbone = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    print(f"\ndevice {result.device}; {per_backbone}; total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
