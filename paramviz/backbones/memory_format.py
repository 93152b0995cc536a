"""How a backbone lays out its 4-D weights in memory (and so its convolutions' activations); no torch import.

``auto`` is channels-last on the CPU, where render steps measured 8-21% faster on EfficientNet-Lite0 and
ResNet-50 (batch 1 and 4, 128 and 224 px) and the same within 2% on VGG-19, ResNet-18, GoogLeNet, AlexNet,
ConvNeXt-T and ViT-Ti/16 (timm), and the layout as built elsewhere (not measured on a GPU yet);
``channels_last`` and ``contiguous`` force one layout on every device.
:meth:`paramviz.backbones.base.Backbone.arrange` applies it.
"""

from __future__ import annotations

from paramviz.errors import ConfigError

#: The choices, in the order messages list them.
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
DEFAULT_MEMORY_FORMAT = "auto"
#: The backbone option (``--backbone-option memory_format=...``) that every backbone takes.
MEMORY_FORMAT_OPTION = "memory_format"


def check_memory_format(value: object) -> str:
    """Validate a memory format name (one of :data:`MEMORY_FORMATS`)."""
    if value not in MEMORY_FORMATS:
        raise ConfigError(
            f"memory format must be one of {', '.join(MEMORY_FORMATS)}, got {value!r}; "
            f"{DEFAULT_MEMORY_FORMAT!r} picks the faster layout per device"
        )
    return str(value)
