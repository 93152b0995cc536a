"""The 1000 ImageNet-1k class names (torchvision's labels) and lookup of a class by name or index.

The names come from torchvision's weight metadata, so no file or download is needed. They are unique as
written; two differ only by case (``"Cardigan"``, the dog, 264; ``"cardigan"``, the sweater, 474).
"""

from __future__ import annotations

from torchvision.models import ResNet50_Weights

from paramviz.errors import ConfigError, UnknownNameError

IMAGENET_CLASSES: tuple[str, ...] = tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
NUM_CLASSES = len(IMAGENET_CLASSES)
_HINT = "give the full class name or its index 0-999; `paramviz.backbones.IMAGENET_CLASSES` lists them"


def _norm(label: str) -> str:
    return " ".join(label.replace("_", " ").lower().split())


def class_name(index: int) -> str:
    """The ImageNet class name at ``index`` (0-999)."""
    return IMAGENET_CLASSES[class_index(index)]


def class_index(label: str | int) -> int:
    """Index (0-999) of an ImageNet class given by name or index.

    Names match exactly first (as written, then ignoring case, with ``_`` read as a space, so
    ``"egyptian_cat"`` works on the command line), then as a substring that only one class contains
    (``"espresso"`` but not ``"cat"``). A string of digits is read as an index.

    Raises:
        UnknownNameError: No class matches, or a substring matches several (close matches are listed).
        ConfigError: An index outside 0-999, or a name that only differs by case between two classes.
    """
    if isinstance(label, bool) or not isinstance(label, (int, str)):
        raise ConfigError(f"ImageNet class must be a name or an index, got {type(label).__name__} {label!r}")
    if isinstance(label, str) and label.strip().isdigit():
        label = int(label.strip())
    if isinstance(label, int):
        if not 0 <= label < NUM_CLASSES:
            raise ConfigError(f"ImageNet class index {label} is out of range; expected 0 to {NUM_CLASSES - 1}")
        return label
    if label in IMAGENET_CLASSES:
        return IMAGENET_CLASSES.index(label)
    key = _norm(label)
    exact = [i for i, name in enumerate(IMAGENET_CLASSES) if _norm(name) == key]
    if len(exact) == 1:
        return exact[0]
    if len(exact) > 1:
        listed = ", ".join(f"{i} ({IMAGENET_CLASSES[i]!r})" for i in exact)
        raise ConfigError(f"ImageNet class {label!r} is ambiguous: {listed}; give the name's exact case or index")
    partial = [i for i, name in enumerate(IMAGENET_CLASSES) if key and key in _norm(name)]
    if len(partial) == 1:
        return partial[0]
    if partial:
        found = [IMAGENET_CLASSES[i] for i in partial]
        listed = ", ".join(f"{IMAGENET_CLASSES[i]!r} ({i})" for i in partial[:10])
        more = ", ..." if len(partial) > 10 else ""
        hint = f"{len(found)} classes contain {label!r}: {listed}{more}; {_HINT}"
        raise UnknownNameError("ImageNet class", label, found, hint)
    raise UnknownNameError("ImageNet class", label, IMAGENET_CLASSES, _HINT)
