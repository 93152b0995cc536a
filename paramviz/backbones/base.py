"""The :class:`Backbone` wrapper: normalization, frozen eval mode, named layers, truncated forward."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from paramviz.backbones.fold import BatchNormFolding, find_batchnorm_pairs
from paramviz.backbones.layout import FeatureLayout, last_dim_modules, to_nchw
from paramviz.backbones.memory_format import DEFAULT_MEMORY_FORMAT, check_memory_format
from paramviz.backbones.meta import hooks_set_aside, run_on_meta
from paramviz.backbones.options import DEFAULT_FOLD_BATCHNORM, check_fold_batchnorm
from paramviz.errors import ConfigError, ImageError, UnknownNameError

LAYERS_HINT = "run `paramviz layers {name}` to list its layers"


#: Fragments of PyTorch's messages for inputs that shrink to nothing inside the network.
_TOO_SMALL = ("too small", "Kernel size can't be greater than actual input size")
#: Fragments of timm's assertions on the input size (ViT/Swin patch embeddings).
_SIZE_ASSERTS = ("Input height", "Input width", "Input image height", "Input image width")


#: Input side of the probe forward when a backbone does not know its native input size.
PROBE_SIZE = 224


class _StopForward(Exception):
    """Raised from a forward hook once every requested layer has been captured."""


@dataclass(frozen=True)
class LayerInfo:
    """What one forward pass shows about a module (see :meth:`Backbone.probe`).

    Attributes:
        path: Dotted module path.
        kind: The module's class name.
        ran: Whether the module is called in the network's forward pass (a drop-path that its block skips,
            or an auxiliary head used only in training, is not).
        shape: Output shape of its first call for one image, without the batch dimension (e.g. ``(112, 14,
            14)``); ``None`` if it did not run or returned no tensor.
        order: Position of its first call among all module calls (``-1`` if it did not run).
        leaf: Whether the module has no submodules (leaf outputs are what a forward pass keeps in memory).
    """

    path: str
    kind: str
    ran: bool
    shape: tuple[int, ...] | None
    order: int
    leaf: bool


class Backbone(nn.Module):
    """A frozen network that takes [0, 1] RGB and returns the activations of named layers.

    Layers are addressed by their dotted ``named_modules()`` path (``"layer3.1.conv2"``) or by a friendly
    alias (``"relu4_2"`` for VGG, ``"logits"`` for the classifier output). ``forward(x, layers)`` runs the
    network only until the last requested layer has produced its output: later modules never run.
    A module that is called several times in one forward pass (e.g. a shared ReLU) is captured at its
    first call.

    Every layer is returned in one layout (:mod:`paramviz.backbones.layout`): spatial layers as (B, C, H, W),
    token sequences (B, N, C) laid out on the patch grid without their class/register tokens, channels-last
    (B, H, W, C) modules permuted; linear layers stay (B, C).

    Args:
        model: The network; it is frozen (no grad) and kept in eval mode.
        mean: Per-channel mean used to normalize [0, 1] RGB input.
        std: Per-channel standard deviation used to normalize input.
        name: Registry name, used in messages.
        aliases: Friendly name -> dotted module path.
        input_size: Native input resolution (for listings and defaults), if known.
        weights_source: Where the weights came from (for ``config.toml`` and listings).
        layout: What the model says about its token and channels-last layers (timm models:
            :func:`~paramviz.backbones.layout.timm_layout`); ``nn.Linear``/``nn.LayerNorm`` outputs are
            channels-last in any case.
        memory_format: Layout of the weights in memory (:mod:`paramviz.backbones.memory_format`), applied by
            :meth:`arrange` when the network first runs on a device. With ``auto``, a network that cannot run
            channels-last (a ``view`` of a feature map) is run as built instead.
        fold_batchnorm: Fold each eval-mode BatchNorm into the convolution before it for paramviz's forward
            passes (:mod:`paramviz.backbones.fold`): same activations, faster steps; the model itself is not
            changed.
    """

    def __init__(
        self,
        model: nn.Module,
        mean: Sequence[float] = (0.485, 0.456, 0.406),
        std: Sequence[float] = (0.229, 0.224, 0.225),
        *,
        name: str = "custom",
        aliases: Mapping[str, str] | None = None,
        input_size: int | None = None,
        weights_source: str = "",
        layout: FeatureLayout | None = None,
        memory_format: str = DEFAULT_MEMORY_FORMAT,
        fold_batchnorm: bool = DEFAULT_FOLD_BATCHNORM,
    ) -> None:
        super().__init__()
        self.model = model
        self.memory_format = check_memory_format(memory_format)
        self.fold_batchnorm = check_fold_batchnorm(fold_batchnorm)
        self._folding: BatchNormFolding | None = None  # found at the first forward that folds
        self._fold_plans: dict[tuple[tuple[int, int], tuple[str, ...]], tuple] = {}  # (size, paths) -> folds
        self._channels_last_fails = False  # auto: the network failed to run channels-last once
        # a weight whose two layouts differ in memory tells which one the weights are in now (they may be
        # shared with another wrapper, or converted by the user): (module, parameter name), or None
        self._layout_witness = next(
            (
                (module, name)
                for module in model.modules()
                for name, w in module.named_parameters(recurse=False)
                if w.dim() == 4 and w.shape[1] > 1 and w.shape[2] * w.shape[3] > 1
            ),
            None,
        )
        self.name = name
        self.input_size = input_size
        self.weights_source = weights_source
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self._modules_by_name = dict(model.named_modules())
        self._modules_by_name.pop("", None)
        self._probes: dict[tuple[int, int], dict[str, LayerInfo] | None] = {}
        self.aliases: dict[str, str] = {}
        for alias, path in (aliases or {}).items():
            if path not in self._modules_by_name:
                raise ValueError(f"alias {alias!r} points to missing module {path!r} in {name}")
            self.aliases[alias] = path
        self.layout = layout or FeatureLayout()
        self._channels_last = self.layout.channels_last | last_dim_modules(model)
        model.requires_grad_(False)
        model.eval()

    # --- frozen / eval ---------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Backbone:
        """Keep the wrapped network in eval mode whatever ``mode`` is asked (it is frozen)."""
        super().train(False)
        return self

    # --- layer names -----------------------------------------------------------------------------
    def layers(self) -> list[str]:
        """Addressable layer names: aliases first, then every dotted module path, in definition order."""
        return list(self.aliases) + list(self._modules_by_name)

    def resolve(self, layer: str) -> str:
        """Map an alias or dotted path to the dotted module path; unknown names raise with suggestions."""
        if layer in self.aliases:
            return self.aliases[layer]
        if layer in self._modules_by_name:
            return layer
        raise UnknownNameError(
            f"layer of backbone {self.name!r}", layer, self.layers(), LAYERS_HINT.format(name=self.name)
        )

    def validate(self, layers: Iterable[str]) -> None:
        """Check layer names before any work: each must exist and run in the network's forward pass.

        Raises:
            UnknownNameError: A name that is neither an alias nor a module path (with close matches).
            ConfigError: A module that exists but is never called by the network's forward (it would have no
                activation), found by :meth:`probe`; the message names it and a module around it that runs.
        """
        layers = list(layers)
        for layer in layers:
            self.resolve(layer)
        info = self.probe()
        if info is None:  # the network cannot run on the meta device: forward() reports such layers
            return
        for layer in layers:
            path = self.resolve(layer)
            if not info[path].ran:
                raise self._never_runs(layer, path, info)

    def _never_runs(self, layer: str, path: str, info: Mapping[str, LayerInfo] | None) -> ConfigError:
        parts = path.split(".")
        around = [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]
        running = next((p for p in around if info is not None and p in info and info[p].ran), None)
        hint = f"use {running!r} (the module around it) or another layer" if running else "use another layer"
        named = repr(layer) if layer == path else f"{layer!r} ({path})"
        return ConfigError(
            f"layer {named} of backbone {self.name!r} (a {type(self._modules_by_name[path]).__name__} module) exists "
            "but never runs in the network's forward pass (e.g. the drop-path of a block without a skip "
            f"connection), so it has no activation; {hint}. `paramviz layers {self.name}` marks such modules"
        )

    def probe(self, size: int | tuple[int, int] | None = None) -> dict[str, LayerInfo] | None:
        """Run the network once on PyTorch's meta device and report every module's call and output shape.

        The meta device carries shapes only: nothing is computed or allocated, so this is instant even for
        VGG at 4096 px, and the backbone's own weights are not touched (they are swapped for meta tensors with
        :func:`torch.func.functional_call`). Results are cached per input size.

        Args:
            size: Input side (or ``(H, W)``); default the native input size, else :data:`PROBE_SIZE`.

        Returns:
            ``{module path: LayerInfo}`` for every module, or ``None`` when the network cannot run on the meta
            device (data-dependent code) or not at this size (too small).
        """
        if size is None:
            size = self.input_size or PROBE_SIZE
        hw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if hw not in self._probes:
            self._probes[hw] = self._probe(hw)
        return self._probes[hw]

    def _probe(self, hw: tuple[int, int]) -> dict[str, LayerInfo] | None:
        calls: dict[str, tuple[int, tuple[int, ...] | None]] = {}

        def make_hook(path: str):
            def hook(_module: nn.Module, _inputs: object, output: object) -> None:
                if path not in calls:
                    if isinstance(output, (tuple, list)) and output:
                        output = output[0]
                    shape = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else None
                    calls[path] = (len(calls), shape)

            return hook

        with hooks_set_aside(self.model):
            for path, module in self._modules_by_name.items():
                module.register_forward_hook(make_hook(path))
            try:
                run_on_meta(self.model, hw)
            except Exception:  # noqa: BLE001 - any failure only means "no probe"; forward() reports real errors
                return None
        return {
            path: LayerInfo(
                path,
                type(module).__name__,
                path in calls,
                calls[path][1] if path in calls else None,
                calls[path][0] if path in calls else -1,
                next(iter(module.children()), None) is None,
            )
            for path, module in self._modules_by_name.items()
        }

    def channels_last(self, layer: str) -> bool:
        """Whether the layer's 4-D output is (B, H, W, C) (it is permuted to (B, C, H, W) by :meth:`forward`)."""
        return self.resolve(layer) in self._channels_last

    def module(self, layer: str) -> nn.Module:
        """The ``nn.Module`` behind a layer name or alias."""
        return self._modules_by_name[self.resolve(layer)]

    # --- forward ---------------------------------------------------------------------------------
    def arrange(self, device: torch.device | str) -> bool:
        """Lay the weights (on ``device``) out as :attr:`memory_format` chooses; returns whether channels-last.

        :meth:`forward` calls it with the input's device, so this is only needed to fix the layout before the
        first forward (benchmarks). The weights are converted only when they are in the other layout.
        """
        device = torch.device(device)
        if self.memory_format == "auto":
            want = device.type == "cpu" and not self._channels_last_fails
        else:
            want = self.memory_format == "channels_last"
        if self._layout_witness is None:  # no weight whose layout matters (no spatial convolution)
            return False
        module, name = self._layout_witness
        weight = getattr(module, name)
        if weight.is_contiguous(memory_format=torch.channels_last if want else torch.contiguous_format):
            return want
        self.model.to(memory_format=torch.channels_last if want else torch.contiguous_format)
        return want

    def folding(self, size: tuple[int, int]) -> BatchNormFolding | None:
        """The BatchNorm folding of forward passes (``None`` when :attr:`fold_batchnorm` is off).

        The pairs are found at the first call, by a meta run at ``size``
        (:func:`~paramviz.backbones.fold.find_batchnorm_pairs`).
        """
        if not self.fold_batchnorm:
            return None
        if self._folding is None:
            self._folding = BatchNormFolding(self.model, find_batchnorm_pairs(self.model, size))
        return self._folding

    def folded_norms(self, size: tuple[int, int], layers: Iterable[str]) -> set[str]:
        """Paths of the normalizations that a forward pass for ``layers`` folds away (no output is allocated)."""
        paths = list(dict.fromkeys(self.resolve(layer) for layer in layers))
        return {fold.pair.norm_path for fold in self.fold_plan(size, paths)}

    def fold_plan(self, size: tuple[int, int], paths: Iterable[str]) -> tuple:
        """The pairs to fold in a forward at ``size`` that returns module ``paths`` (for ``folding().swap_in``).

        Those whose modules are not requested and run before the pass stops (none when folding is off); cached per
        input size and paths.
        """
        folding = self.folding(size)
        if folding is None or not folding.folds:
            return ()
        key = (size, tuple(paths))
        if key not in self._fold_plans:
            info = self.probe(size)
            runs = None
            if info is not None and all(info[p].ran for p in key[1]):
                stop = max(info[p].order for p in key[1])  # a module's order is when its forward ends
                runs = {p for p, layer in info.items() if layer.ran and layer.order < stop}
            self._fold_plans[key] = folding.select(key[1], runs)
        return self._fold_plans[key]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Map [0, 1] RGB to the network's input statistics."""
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """Return ``{name: activation}`` for each requested layer name, stopping after the deepest.

        Args:
            x: Batch of RGB images in [0, 1], shape (B, 3, H, W).
            layers: Layer names or aliases; the returned dict is keyed by the names as given.
        """
        names = list(dict.fromkeys(layers))
        if not names:
            return {}
        by_path: dict[str, list[str]] = {}
        for name in names:
            by_path.setdefault(self.resolve(name), []).append(name)
        channels_last = self.arrange(x.device)
        try:
            captured = self._capture(x, by_path, names)
        except RuntimeError as exc:
            if not channels_last:
                raise
            if self.memory_format == "channels_last":
                raise ConfigError(
                    f"backbone {self.name!r} failed to run with channels-last weights "
                    f"({str(exc).splitlines()[0]}); use memory_format 'auto' or 'contiguous'"
                ) from exc
            # e.g. a ``view`` that flattens a feature map needs the layout as built: run it so from now on; an
            # error that is not about the layout comes back from this second run
            self._channels_last_fails = True
            self.arrange(x.device)
            captured = self._capture(x, by_path, names)
        size, batch = (int(x.shape[-2]), int(x.shape[-1])), int(x.shape[0])
        out = {}
        for path, group in by_path.items():
            value = to_nchw(
                captured[path],
                layer=group[0],
                layout=self.layout,
                channels_last=path in self._channels_last,
                input_size=size,
                batch=batch,
                backbone=self.name,
            )
            out.update(dict.fromkeys(group, value))
        return out

    def _capture(self, x: torch.Tensor, by_path: dict[str, list[str]], names: list[str]) -> dict[str, torch.Tensor]:
        """Run the network on ``x`` until every module in ``by_path`` has produced its output; return them."""
        captured: dict[str, torch.Tensor] = {}
        handles = []

        def make_hook(path: str):
            def hook(_module: nn.Module, _inputs: object, output: object) -> None:
                if path in captured:
                    return
                if isinstance(output, (tuple, list)):
                    output = output[0]
                if len(captured) + 1 < len(by_path) and isinstance(output, torch.Tensor):
                    # the forward goes on: keep a copy that later in-place ops (inplace ReLU, ResNet's
                    # ``out += identity``, GoogLeNet's F.relu(inplace=True)) cannot overwrite
                    output = output.clone()
                captured[path] = output
                if len(captured) == len(by_path):
                    raise _StopForward

            return hook

        plan = () if x.is_meta else self.fold_plan((int(x.shape[-2]), int(x.shape[-1])), by_path)
        swapped = self._folding.swap_in(plan) if plan else []
        try:
            for path in by_path:
                handles.append(self._modules_by_name[path].register_forward_hook(make_hook(path)))
            with contextlib.suppress(_StopForward):
                try:
                    self.model(self.normalize(x))
                except AssertionError as exc:  # timm checks input sizes with assert (e.g. ViT patch size)
                    if not any(marker in str(exc) for marker in _SIZE_ASSERTS):
                        raise
                    raise ImageError(
                        f"backbone {self.name!r} refused an input of {x.shape[-2]}x{x.shape[-1]} px ({exc}); "
                        "change --size, or the transforms (padding and crops change the size the network sees)"
                    ) from None
                except RuntimeError as exc:
                    if not any(marker in str(exc) for marker in _TOO_SMALL):
                        raise
                    raise ImageError(
                        f"an image of {x.shape[-2]}x{x.shape[-1]} px is too small for backbone {self.name!r} up to "
                        f"layer(s) {', '.join(names)} ({str(exc).splitlines()[0]}); use a larger --size (or "
                        "--style-scale), or an earlier layer"
                    ) from None
        finally:
            for handle in handles:
                handle.remove()
            BatchNormFolding.swap_out(swapped)
        missing = [p for p in by_path if p not in captured]
        if missing:
            raise self._never_runs(by_path[missing[0]][0], missing[0], self.probe())
        return captured

    def extra_repr(self) -> str:
        return f"name={self.name!r}, weights={self.weights_source!r}"


class BackboneView(nn.Module):
    """Base of modules that wrap a backbone and change what its forward does (the input, or extra outputs).

    Layer names, resolution and validation are the wrapped backbone's; subclasses implement ``forward``.

    Args:
        backbone: A backbone (``forward(x, layers) -> {layer: tensor}``, ``layers()``, ``resolve``, ``validate``).
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.name = getattr(backbone, "name", type(backbone).__name__)
        self.weights_source = getattr(backbone, "weights_source", "")

    def layers(self) -> list[str]:
        """The wrapped backbone's layer names."""
        return self.backbone.layers()

    def resolve(self, layer: str) -> str:
        """The wrapped backbone's name resolution."""
        return self.backbone.resolve(layer)

    def validate(self, layers: Iterable[str]) -> None:
        """The wrapped backbone's validation."""
        self.backbone.validate(layers)
