"""Adversarially robust ImageNet backbones from MadryLab ``robustness``-library checkpoint files.

The files are read natively: the ``robustness`` package (last release 2020, hard-codes CUDA, does not import
with current torchvision) is never imported. A checkpoint written by the library is a dict::

    {"model": state_dict, "optimizer": ..., "schedule": ..., "epoch": int}   # legacy files: "state_dict"

whose state dict is the library's ``AttackerModel`` wrapped in ``DataParallel``:

* ``module.normalizer.new_mean`` / ``new_std`` (shape (3, 1, 1)): the input normalization the network was
  trained with (inputs are [0, 1] RGB);
* ``module.model.<torchvision keys>``: the classifier (ResNet and Wide-ResNet from the library's own model
  zoo, whose keys equal torchvision's);
* ``module.attacker.normalize.*`` and ``module.attacker.model.*``: the same tensors again (dropped).

The files of Salman et al. (2020, "Do Adversarially Robust ImageNet Models Transfer Better?",
github.com/microsoft/robust-models-transfer) for torchvision architectures (DenseNet-161, MobileNet-v2,
VGG16-bn, ResNeXt-50, ShuffleNet-v2, MNASNet) were written through the library's ``DummyModel`` wrapper, which
nests one more level: ``module.model.model.<torchvision keys>``.

:func:`read_robust_checkpoint` turns either layout into a torchvision state dict plus the stored mean/std,
refusing any missing or unexpected key by name; :func:`load_robust_backbone` builds the
:class:`~paramviz.backbones.base.Backbone` (inferring the architecture from the tensor shapes when asked).
Files are read with ``torch.load(weights_only=True)`` (via :func:`paramviz.backbones.weights.read_checkpoint`);
a file that needs full unpickling (the library saved with ``pickle_module=dill``) is refused with
:class:`~paramviz.errors.UnsafeCheckpointError` unless ``trust_checkpoint=True`` (``--trust-checkpoint``).

Registered backbones (``paramviz models``, family ``robust``):

* ``madry_resnet50_l2_eps3``, ``madry_resnet50_linf_eps4``, ``madry_resnet50_linf_eps8``: the ImageNet
  ResNet-50 files of the ``robustness`` library README (``imagenet_l2_3_0.pt``, ``imagenet_linf_4.pt``,
  ``imagenet_linf_8.pt``; Dropbox links of that README, with ``dl=1`` for a direct download).
* ``salman_<arch>_l2_eps<E>`` for ``resnet18``, ``resnet50``, ``wide_resnet50_2``, ``wide_resnet50_4`` at
  every published L2 radius E in {0, 0.01, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 3, 5};
  ``salman_<arch>_linf_eps<E>`` (E in units of 1/255: 0.5, 1, 2, 4, 8) for ``resnet18``, ``resnet50``,
  ``wide_resnet50_2``, plus ``..._linf_eps0``, the same standard-trained control file as ``..._l2_eps0``;
  ``salman_<arch>_l2_eps0`` / ``_eps3`` for ``densenet161``, ``mobilenet_v2``, ``vgg16_bn``,
  ``resnext50_32x4d``, ``shufflenet_v2_x1_0``, ``mnasnet1_0``. File names are those of the Salman et al.
  README (``resnet50_l2_eps3.ckpt``, ``resnet50_linf_eps4.0.ckpt``, ``densenet_l2_eps3.ckpt``, ...). That
  README's Azure blob links (``robustnessws4285631339.blob.core.windows.net/public-models/robust_imagenet/``)
  carried a storage token that was revoked in 2023; the files are mirrored with the same names at
  ``huggingface.co/madrylab/robust-imagenet-models``, which is the download URL used here. Entries whose file
  was not seen referenced at that mirror in public code say "URL unverified" in their weights source.
* ``robust_checkpoint``: any robustness-library file given with ``--weights PATH`` (architecture inferred).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision import models as tvm
from torchvision.models.resnet import Bottleneck, ResNet

from paramviz.backbones.base import Backbone
from paramviz.backbones.catalog import vgg_aliases
from paramviz.backbones.registry import register_backbone
from paramviz.backbones.weights import cached_download, load_into, read_checkpoint
from paramviz.errors import CheckpointError, ConfigError, UnknownNameError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HF_BASE = "https://huggingface.co/madrylab/robust-imagenet-models/resolve/main/"
AZURE_BASE = "https://robustnessws4285631339.blob.core.windows.net/public-models/robust_imagenet/"
_MAX_LISTED = 5


# --- architectures -----------------------------------------------------------------------------------------
def _wide_resnet50_4() -> nn.Module:
    """Wide-ResNet-50-4 as in the robustness library (torchvision ResNet with ``width_per_group=256``)."""
    return ResNet(Bottleneck, [3, 4, 6, 3], width_per_group=64 * 4)


def _resnet_aliases(_model: nn.Module) -> dict[str, str]:
    """ResNet family: ``layer1``..``layer4`` are module paths already; ``logits`` is ``fc`` (as in the catalog)."""
    return {"logits": "fc"}


@dataclass(frozen=True)
class RobustArch:
    """A torchvision architecture that robustness-library files are mapped onto.

    Attributes:
        name: torchvision-style name (``"densenet161"``).
        build: Builds the randomly initialized network (1000 ImageNet classes).
        aliases: Friendly layer names of a built network (always includes ``logits``).
        file_name: The architecture's name in the Salman et al. file names (``"densenet"``).
        nested: Whether its files nest ``module.model.model.*`` (torchvision models via ``DummyModel``).
    """

    name: str
    build: Callable[[], nn.Module]
    aliases: Callable[[nn.Module], dict[str, str]]
    file_name: str
    nested: bool


def _fixed(mapping: Mapping[str, str]) -> Callable[[nn.Module], dict[str, str]]:
    return lambda _model: dict(mapping)


ARCHS: dict[str, RobustArch] = {
    a.name: a
    for a in (
        RobustArch("resnet18", partial(tvm.resnet18, weights=None), _resnet_aliases, "resnet18", False),
        RobustArch("resnet50", partial(tvm.resnet50, weights=None), _resnet_aliases, "resnet50", False),
        RobustArch(
            "wide_resnet50_2", partial(tvm.wide_resnet50_2, weights=None), _resnet_aliases, "wide_resnet50_2", False
        ),
        RobustArch("wide_resnet50_4", _wide_resnet50_4, _resnet_aliases, "wide_resnet50_4", False),
        RobustArch(
            "resnext50_32x4d", partial(tvm.resnext50_32x4d, weights=None), _resnet_aliases, "resnext50_32x4d", True
        ),
        RobustArch(
            "vgg16_bn",
            partial(tvm.vgg16_bn, weights=None),
            vgg_aliases,
            "vgg16_bn",
            True,
        ),
        RobustArch(
            "densenet161", partial(tvm.densenet161, weights=None), _fixed({"logits": "classifier"}), "densenet", True
        ),
        RobustArch(
            "mobilenet_v2",
            partial(tvm.mobilenet_v2, weights=None),
            _fixed({"logits": "classifier.1"}),
            "mobilenet",
            True,
        ),
        RobustArch(
            "shufflenet_v2_x1_0",
            partial(tvm.shufflenet_v2_x1_0, weights=None),
            _fixed({"logits": "fc"}),
            "shufflenet",
            True,
        ),
        RobustArch(
            "mnasnet1_0", partial(tvm.mnasnet1_0, weights=None), _fixed({"logits": "classifier.1"}), "mnasnet", True
        ),
    )
}
#: Names used by the robustness library / Salman et al. for the same architectures.
ARCH_SYNONYMS = {a.file_name: a.name for a in ARCHS.values()} | {
    "densenet": "densenet161",
    "mobilenet": "mobilenet_v2",
    "shufflenet": "shufflenet_v2_x1_0",
    "mnasnet": "mnasnet1_0",
}


def get_arch(name: str) -> RobustArch:
    """The :class:`RobustArch` called ``name`` (torchvision or robustness-library spelling)."""
    key = ARCH_SYNONYMS.get(name, name)
    if key not in ARCHS:
        raise UnknownNameError("robust-checkpoint architecture", name, list(ARCHS) + list(ARCH_SYNONYMS))
    return ARCHS[key]


def build_arch(name: str, device: torch.device | str | None = None) -> nn.Module:
    """Build a randomly initialized network of architecture ``name`` (``device="meta"``: shapes only)."""
    arch = get_arch(name)
    if device is None:
        return arch.build()
    with torch.device(device):
        return arch.build()


def _expected_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in build_arch(arch, "meta").state_dict().items()}


def infer_arch(state_dict: Mapping[str, torch.Tensor], *, source: str = "checkpoint") -> str:
    """Name the architecture in :data:`ARCHS` whose keys and tensor shapes equal ``state_dict``'s.

    Raises:
        CheckpointError: No architecture matches; the message names the closest one and how it differs.
    """
    got = {k: tuple(v.shape) for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
    candidates: list[tuple[int, str, list[str], list[str]]] = []
    for name in ARCHS:
        expected = {k: s for k, s in _expected_shapes(name).items() if not k.endswith("num_batches_tracked")}
        if expected == got:
            return name
        missing = [k for k in expected if k not in got]
        unexpected = [k for k in got if k not in expected or expected[k] != got[k]]
        candidates.append((len(missing) + len(unexpected), name, missing, unexpected))
    best = min(candidates, key=lambda c: c[0])
    _, name, missing, unexpected = best
    raise CheckpointError(
        f"{source}: the network weights match none of the supported architectures "
        f"({', '.join(ARCHS)}); closest is {name!r} with {len(missing)} missing key(s) "
        f"{_listed(missing)} and {len(unexpected)} unexpected or differently shaped key(s) {_listed(unexpected)}. "
        "Pass the architecture explicitly if it is one of these."
    )


# --- reading robustness-library files ----------------------------------------------------------------------
@dataclass(frozen=True)
class RobustCheckpoint:
    """The content of a robustness-library checkpoint, mapped to torchvision keys.

    Attributes:
        state_dict: The classifier's weights with torchvision keys.
        mean: Input normalization mean stored in the file (``module.normalizer.new_mean``).
        std: Input normalization std stored in the file (``module.normalizer.new_std``).
        layout: ``"robustness"`` (``module.model.*``) or ``"robustness-torchvision"``
            (``module.model.model.*``, Salman et al.'s torchvision architectures).
        container_key: Top-level key that held the state dict (``"model"``, legacy ``"state_dict"``, or
            ``""`` for a bare state dict).
        epoch: The ``epoch`` entry of the file, if any.
        source: File name or description, for messages.
    """

    state_dict: dict[str, torch.Tensor] = field(repr=False)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    layout: str
    container_key: str
    epoch: int | None
    source: str


def is_robust_state_dict(state_dict: Mapping[str, Any]) -> bool:
    """Whether a flat state dict looks like a robustness-library ``AttackerModel`` (has the normalizer)."""
    return any(str(k).endswith("normalizer.new_mean") for k in state_dict)


def parse_robust_checkpoint(obj: Any, *, source: str = "checkpoint") -> RobustCheckpoint:
    """Map a loaded robustness-library checkpoint object onto torchvision keys plus mean/std.

    Args:
        obj: What ``torch.load`` returned: ``{"model": sd, ...}``, legacy ``{"state_dict": sd, ...}``, or the
            state dict itself.
        source: File name for messages.

    Raises:
        CheckpointError: Not a dict, no state dict, or any missing or unexpected key (named in the message).
    """
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{source}: expected a robustness-library checkpoint (a dict with a 'model' entry), "
            f"got {type(obj).__name__}"
        )
    container = ""
    state: Any = obj
    for key in ("model", "state_dict"):
        if isinstance(obj.get(key), Mapping):
            container, state = key, obj[key]
            break
    else:
        if not all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise CheckpointError(
                f"{source}: no state dict found; a robustness-library checkpoint has a top-level 'model' "
                f"(legacy: 'state_dict') entry, this file has {_listed([str(k) for k in obj])}"
            )
    bad = [str(k) for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{source}: state dict entries {_listed(bad)} are not tensors")
    keys = [str(k) for k in state]
    prefix = "module." if keys and all(k.startswith("module.") for k in keys) else ""
    groups: dict[str, dict[str, torch.Tensor]] = {"normalizer": {}, "model": {}, "attacker": {}}
    unexpected: list[str] = []
    for key, value in state.items():
        key = str(key)
        head, _, rest = key[len(prefix) :].partition(".")
        if head in groups and rest:
            groups[head][rest] = value
        else:
            unexpected.append(key)
    if unexpected:
        raise CheckpointError(
            f"{source}: unexpected key(s) {_listed(unexpected)} ({len(unexpected)} in all); a robustness-library "
            f"state dict holds only '{prefix}normalizer.*', '{prefix}model.*' and '{prefix}attacker.*'"
        )
    norm = groups["normalizer"]
    for name in ("new_mean", "new_std"):
        if name not in norm:
            raise CheckpointError(
                f"{source}: missing key '{prefix}normalizer.{name}' (the input normalization the network was "
                "trained with); this is not a robustness-library checkpoint, or it was stripped"
            )
    extra = [f"{prefix}normalizer.{k}" for k in norm if k not in ("new_mean", "new_std")]
    if extra:
        raise CheckpointError(f"{source}: unexpected key(s) {_listed(extra)}")
    mean = tuple(float(v) for v in norm["new_mean"].flatten())
    std = tuple(float(v) for v in norm["new_std"].flatten())
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise CheckpointError(
            f"{source}: '{prefix}normalizer.new_mean'/'new_std' must hold 3 values (std > 0), got {mean} / {std}"
        )
    net = groups["model"]
    if not net:
        raise CheckpointError(f"{source}: missing the network weights ('{prefix}model.*' keys)")
    layout = "robustness"
    if all(k.startswith("model.") for k in net):
        net = {k[len("model.") :]: v for k, v in net.items()}
        layout = "robustness-torchvision"
    nested = "model." if layout == "robustness-torchvision" else ""
    allowed = {"normalize.new_mean", "normalize.new_std"} | {f"model.{nested}{k}" for k in net}
    stray = [f"{prefix}attacker.{k}" for k in groups["attacker"] if k not in allowed]
    if stray:
        raise CheckpointError(
            f"{source}: unexpected key(s) {_listed(stray)}; '{prefix}attacker.*' should only repeat the "
            "normalizer and the network"
        )
    epoch = obj.get("epoch") if container else None
    return RobustCheckpoint(
        state_dict=dict(net),
        mean=mean,
        std=std,
        layout=layout,
        container_key=container,
        epoch=int(epoch) if isinstance(epoch, (int, float)) and not isinstance(epoch, bool) else None,
        source=source,
    )


def read_robust_checkpoint(path: str | os.PathLike[str], *, trust: bool = False) -> RobustCheckpoint:
    """Read a robustness-library checkpoint file (``weights_only=True`` unless ``trust``).

    This is a thin wrapper of :func:`paramviz.backbones.weights.read_checkpoint`, which keeps the top-level
    dict (``model``/``epoch``) that the generic ``load_state_dict_file`` would unwrap.

    Raises:
        WeightsError: Missing or unreadable file.
        UnsafeCheckpointError: The file needs full unpickling and ``trust`` is false.
        CheckpointError: The layout is not the robustness library's (see :func:`parse_robust_checkpoint`).
    """
    return parse_robust_checkpoint(read_checkpoint(path, trust=trust), source=str(path))


def robust_backbone_from_checkpoint(
    checkpoint: RobustCheckpoint, arch: str = "auto", *, name: str = "robust", weights_source: str = ""
) -> Backbone:
    """Build the :class:`Backbone` for a parsed checkpoint (``arch="auto"`` infers it from the shapes).

    Raises:
        CheckpointError: No architecture fits (``auto``).
        WeightsError: The weights do not fit the given architecture (missing/unexpected keys are named).
    """
    arch_name = infer_arch(checkpoint.state_dict, source=checkpoint.source) if arch == "auto" else arch
    spec = get_arch(arch_name)
    model = spec.build()
    load_into(model, checkpoint.state_dict, source=checkpoint.source, name=name)
    return Backbone(
        model,
        checkpoint.mean,
        checkpoint.std,
        name=name,
        aliases=spec.aliases(model),
        input_size=224,
        weights_source=weights_source or f"file {checkpoint.source}",
    )


def load_robust_backbone(
    path: str | os.PathLike[str], arch: str = "auto", *, trust_checkpoint: bool = False, name: str = "robust"
) -> Backbone:
    """Read a robustness-library checkpoint file and return it as a frozen :class:`Backbone`.

    Args:
        path: The ``.pt``/``.ckpt`` file.
        arch: A name of :data:`ARCHS` (or its robustness-library spelling), or ``"auto"`` to infer it.
        trust_checkpoint: Allow full unpickling (only for files from a trusted source).
        name: Backbone name for messages and listings.
    """
    return robust_backbone_from_checkpoint(read_robust_checkpoint(path, trust=trust_checkpoint), arch, name=name)


# --- published files and registry entries -----------------------------------------------------------------
@dataclass(frozen=True)
class RobustWeights:
    """One published robust checkpoint file.

    Attributes:
        name: Registry name (``salman_resnet50_l2_eps3``).
        arch: Architecture in :data:`ARCHS`.
        norm: ``"l2"`` or ``"linf"`` (the threat model it was trained against).
        eps: Training radius in [0, 1] pixel units (L-infinity: 4/255 = 0.0157).
        filename: The file name users download (and the name in the torch hub cache).
        url: Download URL.
        origin: Who published it.
        top1: Published ImageNet top-1 accuracy (%) on clean images.
        url_verified: Whether this URL was seen referenced in public code (else: same mirror and file name,
            unverified).
    """

    name: str
    arch: str
    norm: str
    eps: float
    filename: str
    url: str
    origin: str
    top1: float
    url_verified: bool = True

    @property
    def eps_text(self) -> str:
        """``ε=3`` (L2) or ``ε=4/255`` (L-infinity)."""
        if self.norm == "linf":
            return f"ε={_num(self.eps * 255)}/255"
        return f"ε={_num(self.eps)}"

    def description(self) -> str:
        """One line for listings."""
        norm = "L2" if self.norm == "l2" else "L∞"
        kind = "standard-trained control" if self.eps == 0 else f"{norm}-robust {self.eps_text}"
        return f"{self.arch} {kind} ({self.origin}, {self.top1:.2f}% top-1)"

    def source(self) -> str:
        """Where ``weights="pretrained"`` comes from."""
        note = "" if self.url_verified else "; URL unverified"
        return f"{self.filename} from {self.url} (downloads on first use{note})"


def _num(value: float) -> str:
    return f"{value:g}"


MADRY_WEIGHTS = (
    RobustWeights(
        "madry_resnet50_l2_eps3", "resnet50", "l2", 3.0, "imagenet_l2_3_0.pt",
        "https://www.dropbox.com/s/knf4uimlqsi1yz8/imagenet_l2_3_0.pt?dl=1", "MadryLab robustness", 57.90,
    ),
    RobustWeights(
        "madry_resnet50_linf_eps4", "resnet50", "linf", 4 / 255, "imagenet_linf_4.pt",
        "https://www.dropbox.com/s/axfuary2w1cnyrg/imagenet_linf_4.pt?dl=1", "MadryLab robustness", 62.42,
    ),
    RobustWeights(
        "madry_resnet50_linf_eps8", "resnet50", "linf", 8 / 255, "imagenet_linf_8.pt",
        "https://www.dropbox.com/s/yxn15a9zklz3s8q/imagenet_linf_8.pt?dl=1", "MadryLab robustness", 47.91,
    ),
)  # fmt: skip

#: Published L2 radii of Salman et al. and the ImageNet top-1 (%) of each architecture at those radii.
SALMAN_L2_EPS = ("0", "0.01", "0.03", "0.05", "0.1", "0.25", "0.5", "1", "3", "5")
SALMAN_L2_TOP1 = {
    "resnet18": (69.79, 69.90, 69.24, 69.15, 68.77, 67.43, 65.49, 62.32, 53.12, 45.59),
    "resnet50": (75.80, 75.68, 75.76, 75.59, 74.78, 74.14, 73.16, 70.43, 62.83, 56.13),
    "wide_resnet50_2": (76.97, 77.25, 77.26, 77.17, 76.74, 76.21, 75.11, 73.41, 66.90, 60.94),
    "wide_resnet50_4": (77.91, 78.02, 77.87, 77.77, 77.64, 77.10, 76.52, 75.51, 69.67, 65.20),
}
#: Published L-infinity radii (units of 1/255) and top-1 (%).
SALMAN_LINF_EPS = ("0.5", "1", "2", "4", "8")
SALMAN_LINF_TOP1 = {
    "resnet18": (66.13, 63.46, 59.63, 52.49, 42.11),
    "resnet50": (73.73, 72.05, 69.10, 63.86, 54.53),
    "wide_resnet50_2": (75.82, 74.65, 72.35, 68.41, 60.82),
}
#: Other architectures, published at L2 ε = 0 and 3 only: top-1 (%) at (0, 3).
SALMAN_OTHER_TOP1 = {
    "densenet161": (77.37, 66.98),
    "mnasnet1_0": (60.97, 41.83),
    "mobilenet_v2": (65.26, 50.40),
    "resnext50_32x4d": (77.38, 66.25),
    "shufflenet_v2_x1_0": (64.25, 43.32),
    "vgg16_bn": (73.66, 57.19),
}
#: Files of the Salman et al. set seen referenced at the Hugging Face mirror in public code.
_VERIFIED = (
    {f"resnet50_l2_eps{e}.ckpt" for e in SALMAN_L2_EPS}
    | {f"{a}_linf_eps{float(e):.1f}.ckpt" for a in SALMAN_LINF_TOP1 for e in SALMAN_LINF_EPS}
    | {f"wide_resnet50_2_l2_eps{e}.ckpt" for e in ("1", "3", "5")}
)
SALMAN = "Salman et al. 2020"


def _salman(arch: str, norm: str, eps: str, top1: float, *, file_norm: str | None = None) -> RobustWeights:
    file_arch = ARCHS[arch].file_name
    if (file_norm or norm) == "linf":
        filename = f"{file_arch}_linf_eps{float(eps):.1f}.ckpt"
        value = float(eps) / 255
    else:
        filename = f"{file_arch}_l2_eps{eps}.ckpt"
        value = float(eps)
    return RobustWeights(
        f"salman_{arch}_{norm}_eps{eps}",
        arch,
        norm,
        value,
        filename,
        HF_BASE + filename,
        SALMAN,
        top1,
        url_verified=filename in _VERIFIED,
    )


def _salman_weights() -> list[RobustWeights]:
    out: list[RobustWeights] = []
    for arch, accs in SALMAN_L2_TOP1.items():
        out += [_salman(arch, "l2", e, acc) for e, acc in zip(SALMAN_L2_EPS, accs, strict=True)]
        if arch in SALMAN_LINF_TOP1:
            out.append(_salman(arch, "linf", "0", accs[0], file_norm="l2"))  # the shared ε=0 control
            out += [
                _salman(arch, "linf", e, acc) for e, acc in zip(SALMAN_LINF_EPS, SALMAN_LINF_TOP1[arch], strict=True)
            ]
    for arch, (acc0, acc3) in SALMAN_OTHER_TOP1.items():
        out += [_salman(arch, "l2", "0", acc0), _salman(arch, "l2", "3", acc3)]
    return out


#: Every published file with a registry entry, by registry name.
ROBUST_WEIGHTS: dict[str, RobustWeights] = {w.name: w for w in (*MADRY_WEIGHTS, *_salman_weights())}


def _random_backbone(arch: str, name: str) -> Backbone:
    spec = get_arch(arch)
    model = spec.build()
    return Backbone(
        model,
        IMAGENET_MEAN,
        IMAGENET_STD,
        name=name,
        aliases=spec.aliases(model),
        input_size=224,
        weights_source="random",
    )


def build_robust(
    weights_entry: RobustWeights, weights: str = "pretrained", *, trust_checkpoint: bool = False
) -> Backbone:
    """Build a published robust backbone: ``weights`` is ``"pretrained"``, ``"random"`` or a local file path.

    ``"pretrained"`` uses the torch hub cache (``<hub dir>/checkpoints/<filename>``) and downloads the file on
    first use; offline, the :class:`~paramviz.errors.WeightsError` names the file, the cache path and the URL.
    """
    w = weights_entry
    if weights == "random":
        return _random_backbone(w.arch, w.name)
    if weights == "pretrained":
        path = cached_download(w.url, w.filename, name=f"backbone {w.name!r}", check_hash=False)
        source = f"{w.filename} ({w.origin}, {w.url})"
    else:
        path = Path(weights)
        source = f"file {weights}"
    checkpoint = read_robust_checkpoint(path, trust=trust_checkpoint)
    return robust_backbone_from_checkpoint(checkpoint, w.arch, name=w.name, weights_source=source)


def _register(w: RobustWeights) -> None:
    def factory(weights: str = "pretrained", *, trust_checkpoint: bool = False) -> Backbone:
        return build_robust(w, weights, trust_checkpoint=trust_checkpoint)

    factory.__doc__ = w.description()
    factory.__name__ = w.name.replace(".", "_")
    register_backbone(w.name, description=w.description(), weights_source=w.source(), family="robust")(factory)


for _w in ROBUST_WEIGHTS.values():
    _register(_w)


@register_backbone(
    "robust_checkpoint",
    description="any MadryLab robustness-library checkpoint given with --weights PATH (architecture inferred)",
    weights_source="a local file only (--weights PATH)",
    family="robust",
)
def robust_checkpoint(weights: str = "pretrained", *, trust_checkpoint: bool = False, arch: str = "auto") -> Backbone:
    """Any robustness-library checkpoint file: ``arch`` is a name of :data:`ARCHS` or ``"auto"``."""
    if weights == "pretrained":
        raise ConfigError(
            "backbone 'robust_checkpoint' has no published weights; give the checkpoint file with "
            "--weights PATH (or use a named entry such as 'madry_resnet50_l2_eps3', see `paramviz models`)"
        )
    if weights == "random":
        if arch == "auto":
            raise ConfigError(
                "backbone 'robust_checkpoint' with random weights needs an architecture, e.g. arch='resnet50'"
            )
        return _random_backbone(arch, "robust_checkpoint")
    return load_robust_backbone(weights, arch, trust_checkpoint=trust_checkpoint, name="robust_checkpoint")


def _listed(keys: list[str]) -> str:
    shown = ", ".join(repr(k) for k in keys[:_MAX_LISTED])
    return shown + (", ..." if len(keys) > _MAX_LISTED else "") if keys else "(none)"
