"""Style and content losses for neural style transfer, on any backbone.

Every loss here is an :class:`~paramviz.objectives.base.Objective`: **a loss per image, shape (B,), lower is
better**. Targets are computed once (from the style or content image, through the backbone, without
gradient) and stored as buffers, so ``.to(device)`` moves them with the objective.

Losses (``F`` is a layer's activation of one image reshaped to (C, N), N = H·W):

- :class:`ContentLoss`: ``mean (F - F_target)^2`` over C·H·W (Gatys et al. 2016, eq. 1, as a mean).
- :class:`GramStyleLoss`: ``mean_{c,d} (G - G_target)^2`` over the C×C entries of the Gram matrix
  ``G = F F^T / norm`` with ``norm = H·W`` (``normalize="hw"``) or ``C·H·W`` (``"chw"``, the PyTorch
  tutorial's choice). With ``"hw"`` this is 4× Gatys et al.'s ``E_l`` (their eq. 4, ``1/(4 N^2 M^2)`` with
  unnormalized Gram matrices).
- :class:`W2StyleLoss`: the squared 2-Wasserstein distance between Gaussians fitted to the activations
  (mean + covariance over positions, as in crowsonkb/style-transfer-pytorch)::

      W2^2 = |m - m_t|^2 + tr(C + C_t - 2 (C_t^1/2 C C_t^1/2)^1/2)

  ``eps`` is added to both covariance diagonals. Only the trace of the matrix square root is needed; it is
  the sum of the square roots of the eigenvalues of the symmetric PSD matrix ``C_t^1/2 C C_t^1/2``, computed
  with ``eigvalsh`` in float64. The gradient of an eigenvalue sum is ``V diag(.) V^T`` and has no
  ``1 / (λ_i - λ_j)`` factors, so it stays finite with repeated eigenvalues (rank-deficient features).
  ``reduction="mean"`` divides by C (crowsonkb's convention); ``"sum"`` is the exact W2².

**SWAG** (Wang, Li, Vasconcelos, CVPR 2021, "Rethinking and Improving the Robustness of Image Style
Transfer"): with ``swag=True`` the activations of each image go through a softmax over all C·H·W entries
(at ``temperature``) before the statistics, as the authors' ``softmax3d``. paramviz multiplies the result
by C·H·W so the values have mean 1: the statistics then do not depend on the image size (the style image
may be larger than the output) and weights stay in a usual range. For equal sizes this only rescales each
layer's loss by a constant (``(C·H·W)^2`` for Gram), i.e. it is the same as a different layer weight.

**Several style images** blend their targets with non-negative weights normalized to sum 1: Gram matrices
are averaged; for W2 the means and second raw moments ``E[x x^T]`` are averaged (these, unlike covariances,
combine linearly: the blend is the moment-matched Gaussian of the mixture of the images' activations).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from paramviz.errors import ConfigError, UnknownNameError
from paramviz.objectives.activation import get_feature
from paramviz.objectives.base import Objective

GRAM_NORMALIZATIONS = ("hw", "chw")
"""Gram matrix normalizations: divide ``F F^T`` by H·W or by C·H·W."""

STYLE_LOSSES = ("gram", "w2")
"""Style statistics: Gram matrix (Gatys) or mean + covariance Wasserstein-2 (crowsonkb)."""

W2_REDUCTIONS = ("mean", "sum")
"""``"mean"``: W2² / C (crowsonkb); ``"sum"``: the exact squared distance."""

TARGET_SUFFIX = "@target"
"""Feature key suffix for a per-step content target: when ``features[layer + TARGET_SUFFIX]`` is present,
:class:`ContentLoss` compares with it instead of its stored buffer (used by ``stylize`` to replay random
transforms on the content image so that its features line up with the transformed output)."""

DEFAULT_W2_EPS = 1e-4


# --- statistics ----------------------------------------------------------------------------------
def _spatial(x: torch.Tensor, what: str) -> torch.Tensor:
    if x.dim() != 4:
        raise ConfigError(
            f"{what}: style statistics need a spatial activation (B, C, H, W), got shape {tuple(x.shape)}; "
            "choose a convolutional layer (not the logits or a pooled/linear layer)"
        )
    return x


def swag(x: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """SWAG transform: softmax over all C·H·W activations of each image, times C·H·W (mean 1).

    Args:
        x: Activations (B, C, H, W) (or any (B, ...)).
        temperature: Softmax temperature ``T`` (the softmax of ``x / T``).
    """
    b = x.shape[0]
    flat = x.reshape(b, -1)
    return (torch.softmax(flat / temperature, dim=1) * flat.shape[1]).reshape_as(x)


def gram_matrix(x: torch.Tensor, normalize: str = "hw") -> torch.Tensor:
    """Gram matrices ``F F^T / norm`` of a batch of activations, (B, C, H, W) -> (B, C, C).

    Args:
        x: Activations.
        normalize: ``"hw"`` (divide by H·W) or ``"chw"`` (divide by C·H·W).
    """
    _check_choice("gram normalization", normalize, GRAM_NORMALIZATIONS)
    b, c, h, w = _spatial(x, "gram_matrix").shape
    f = x.reshape(b, c, h * w)
    g = f @ f.transpose(1, 2)
    return g / (h * w) if normalize == "hw" else g / (c * h * w)


def feature_moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (B, C) and second raw moment ``E[f f^T]`` (B, C, C) over the positions of (B, C, H, W)."""
    b, c, h, w = _spatial(x, "feature_moments").shape
    f = x.reshape(b, c, h * w)
    return f.mean(2), f @ f.transpose(1, 2) / (h * w)


def covariance(mean: torch.Tensor, second_moment: torch.Tensor) -> torch.Tensor:
    """Covariance ``E[f f^T] - m m^T`` (population, divided by N) from the mean and second raw moment."""
    return second_moment - mean.unsqueeze(-1) * mean.unsqueeze(-2)


def sqrtm_psd(matrix: torch.Tensor) -> torch.Tensor:
    """Square root of symmetric positive semi-definite matrices (..., C, C) by eigendecomposition.

    Negative eigenvalues from round-off are clamped to 0. Computed in float64, returned in the input dtype
    and device. Meant for constants (targets): use :func:`trace_sqrtm_psd` where a gradient is needed.
    """
    m = _symmetric64(matrix)
    values, vectors = torch.linalg.eigh(m)
    root = (vectors * values.clamp_min(0).sqrt().unsqueeze(-2)) @ vectors.transpose(-1, -2)
    return root.to(device=matrix.device, dtype=matrix.dtype)


def trace_sqrtm_psd(matrix: torch.Tensor, floor: float = 1e-12) -> torch.Tensor:
    """``tr(M^1/2)`` of symmetric PSD matrices (..., C, C) -> (...), differentiable and stable.

    The trace is the sum of the square roots of the eigenvalues (``eigvalsh``, float64). Eigenvalues below
    ``floor`` (round-off around 0) contribute ``sqrt(floor)`` and no gradient.
    """
    values = torch.linalg.eigvalsh(_symmetric64(matrix))
    return values.clamp_min(floor).sqrt().sum(-1).to(device=matrix.device, dtype=matrix.dtype)


def gaussian_w2(
    mean1: torch.Tensor,
    cov1: torch.Tensor,
    mean2: torch.Tensor,
    cov2: torch.Tensor,
    cov2_sqrt: torch.Tensor | None = None,
) -> torch.Tensor:
    """Squared 2-Wasserstein distance between Gaussians N(mean1, cov1) and N(mean2, cov2).

    ``|m1 - m2|^2 + tr(C1) + tr(C2) - 2 tr((C2^1/2 C1 C2^1/2)^1/2)``, batched over leading dimensions.
    Differentiable in ``mean1``/``cov1`` (``mean2``, ``cov2`` are treated as given; pass ``cov2_sqrt`` to
    reuse a precomputed ``C2^1/2``). The trace terms are combined in float64 to limit cancellation.
    """
    root2 = sqrtm_psd(cov2) if cov2_sqrt is None else cov2_sqrt
    device = cov1.device if cov1.device.type != "mps" else torch.device("cpu")
    root2, c1, c2 = (t.to(device=device, dtype=torch.float64) for t in (root2, cov1, cov2))
    middle = root2 @ c1 @ root2
    mean_term = (mean1.to(device, torch.float64) - mean2.to(device, torch.float64)).pow(2).sum(-1)
    trace = _trace(c1) + _trace(c2) - 2 * trace_sqrtm_psd(middle).double()
    return (mean_term + trace).to(device=cov1.device, dtype=cov1.dtype)


def _symmetric64(matrix: torch.Tensor) -> torch.Tensor:
    """Symmetrized float64 copy (on the CPU for devices without float64, such as Apple's MPS)."""
    if matrix.device.type == "mps":
        matrix = matrix.cpu()
    m = matrix.double()
    return 0.5 * (m + m.transpose(-1, -2))


def _trace(matrix: torch.Tensor) -> torch.Tensor:
    return torch.diagonal(matrix, dim1=-2, dim2=-1).sum(-1)


def blend_weights(weights: Sequence[float] | None, count: int, what: str = "style blend") -> list[float]:
    """Validate non-negative weights (one per item) and normalize them to sum 1 (``None``: equal weights).

    Raises:
        ConfigError: Wrong count, a negative or non-finite weight, or all weights zero.
    """
    if count < 1:
        raise ConfigError(f"{what}: at least one image is needed")
    if weights is None:
        return [1.0 / count] * count
    weights = [float(w) for w in weights]
    if len(weights) != count:
        raise ConfigError(f"{what}: got {len(weights)} weights for {count} images; give one weight per image")
    bad = [w for w in weights if not (math.isfinite(w) and w >= 0)]
    if bad:
        raise ConfigError(f"{what}: weights must be finite and non-negative, got {bad}")
    total = sum(weights)
    if total == 0:
        raise ConfigError(f"{what}: every weight is 0; give at least one positive weight")
    return [w / total for w in weights]


# --- objectives ----------------------------------------------------------------------------------
class ContentLoss(Objective):
    """Mean squared error between a layer's activations and the content image's (Gatys et al.).

    Loss per image: ``mean_{c,h,w} (F - F_target)^2``.

    Args:
        layer: Layer name as understood by the backbone.
        target: The content image's activation at ``layer``, (1, C, H, W) or (C, H, W) (or (1, C)).
        name: Term name for logs (default ``content:<layer>``).
    """

    def __init__(self, layer: str, target: torch.Tensor, name: str | None = None) -> None:
        super().__init__(name or f"content:{layer}")
        self.layer = layer
        target = target.detach()
        if target.dim() in (1, 3):
            target = target.unsqueeze(0)
        if target.shape[0] != 1:
            raise ConfigError(f"{self.name}: expected the activation of one content image, got {tuple(target.shape)}")
        self.register_buffer("target", target.clone())

    def layers(self) -> set[str]:
        """The layer this loss reads."""
        return {self.layer}

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Loss per image, shape (B,)."""
        x = get_feature(features, self.layer, self.name)
        target = features.get(self.layer + TARGET_SUFFIX)
        target = self.target if target is None else target.detach()
        if x.shape[1:] != target.shape[1:]:
            raise ConfigError(
                f"{self.name}: the output's activation has shape {tuple(x.shape[1:])} but the content target "
                f"has {tuple(target.shape[1:])}; the image size changed (transforms that pad or crop need the "
                "content target replayed through the same transforms, as stylize() does)"
            )
        return (x - target).pow(2).flatten(1).mean(1)


class StyleLoss(Objective):
    """Base of the style losses: a layer, an optional SWAG softmax, and targets from style activations.

    Args:
        name: Term name for logs.
        layer: Layer name as understood by the backbone.
        swag: Apply the SWAG softmax (see module docstring) before the statistics.
        temperature: SWAG softmax temperature.
    """

    def __init__(self, name: str, layer: str, *, swag: bool = False, temperature: float = 1.0) -> None:
        super().__init__(name)
        if not (math.isfinite(temperature) and temperature > 0):
            raise ConfigError(f"{name}: SWAG temperature must be a positive number, got {temperature}")
        self.layer = layer
        self.swag = bool(swag)
        self.temperature = float(temperature)

    def layers(self) -> set[str]:
        """The layer this loss reads."""
        return {self.layer}

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Check that ``x`` is (B, C, H, W) and apply SWAG if enabled."""
        x = _spatial(x, self.name)
        return swag(x, self.temperature) if self.swag else x

    def feature(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """This loss's layer from ``features``, checked and (with SWAG) softmaxed."""
        return self.prepare(get_feature(features, self.layer, self.name))

    def _targets(self, targets: Sequence[torch.Tensor] | torch.Tensor) -> list[torch.Tensor]:
        if isinstance(targets, torch.Tensor):
            targets = [targets]
        out = []
        for t in targets:
            t = t.detach()
            if t.dim() == 3:
                t = t.unsqueeze(0)
            out.append(self.prepare(t))
        if not out:
            raise ConfigError(f"{self.name}: at least one style activation is needed")
        channels = {t.shape[1] for t in out}
        if len(channels) != 1:
            raise ConfigError(f"{self.name}: style activations have different channel counts {sorted(channels)}")
        return out

    def _check_channels(self, x: torch.Tensor, expected: int) -> None:
        if x.shape[1] != expected:
            raise ConfigError(
                f"{self.name}: the output's activation has {x.shape[1]} channels but the style target has "
                f"{expected}; the targets were computed with another backbone or layer"
            )


class GramStyleLoss(StyleLoss):
    """Gram-matrix style loss (Gatys et al.): ``mean_{c,d} (G - G_target)^2`` per image.

    Args:
        layer: Layer name.
        targets: Activations of the style image(s) at ``layer``, each (1, C, H, W); sizes may differ.
        blend: One non-negative weight per style image (normalized; default equal).
        normalize: ``"hw"`` or ``"chw"`` (see :func:`gram_matrix`).
        swag: Softmax the activations first (Wang et al. 2021).
        temperature: SWAG temperature.
        name: Term name (default ``style:<layer>``).
    """

    def __init__(
        self,
        layer: str,
        targets: Sequence[torch.Tensor] | torch.Tensor,
        blend: Sequence[float] | None = None,
        *,
        normalize: str = "hw",
        swag: bool = False,
        temperature: float = 1.0,
        name: str | None = None,
    ) -> None:
        super().__init__(name or f"style:{layer}", layer, swag=swag, temperature=temperature)
        self.normalize = _check_choice("gram normalization", normalize, GRAM_NORMALIZATIONS)
        acts = self._targets(targets)
        weights = blend_weights(blend, len(acts))
        target = sum(w * gram_matrix(a, normalize).mean(0) for w, a in zip(weights, acts, strict=True))
        self.register_buffer("target", target)

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Loss per image, shape (B,)."""
        x = self.feature(features)
        self._check_channels(x, self.target.shape[0])
        return (gram_matrix(x, self.normalize) - self.target).pow(2).mean((1, 2))

    def extra_repr(self) -> str:
        return f"layer={self.layer!r}, normalize={self.normalize!r}, swag={self.swag}"


class W2StyleLoss(StyleLoss):
    """Wasserstein-2 style loss between Gaussians fitted to the activations (crowsonkb).

    Loss per image: ``W2^2(N(m, C + eps I), N(m_t, C_t + eps I))``, divided by C if ``reduction="mean"``.

    Args:
        layer: Layer name.
        targets: Activations of the style image(s) at ``layer``, each (1, C, H, W); sizes may differ.
        blend: One non-negative weight per style image (normalized; default equal). Means and second raw
            moments are blended.
        eps: Added to the diagonal of both covariances (numerical stability).
        reduction: ``"mean"`` (divide by C, as crowsonkb) or ``"sum"`` (exact W2²).
        swag: Softmax the activations first (Wang et al. 2021).
        temperature: SWAG temperature.
        name: Term name (default ``style:<layer>``).
    """

    def __init__(
        self,
        layer: str,
        targets: Sequence[torch.Tensor] | torch.Tensor,
        blend: Sequence[float] | None = None,
        *,
        eps: float = DEFAULT_W2_EPS,
        reduction: str = "mean",
        swag: bool = False,
        temperature: float = 1.0,
        name: str | None = None,
    ) -> None:
        super().__init__(name or f"style:{layer}", layer, swag=swag, temperature=temperature)
        if not (math.isfinite(eps) and eps >= 0):
            raise ConfigError(f"{self.name}: eps must be a non-negative number, got {eps}")
        self.eps = float(eps)
        self.reduction = _check_choice("W2 reduction", reduction, W2_REDUCTIONS)
        acts = self._targets(targets)
        weights = blend_weights(blend, len(acts))
        moments = [feature_moments(a) for a in acts]
        mean = sum(w * m.mean(0) for w, (m, _) in zip(weights, moments, strict=True))
        srm = sum(w * r.mean(0) for w, (_, r) in zip(weights, moments, strict=True))
        cov = covariance(mean, srm) + self.eps * torch.eye(srm.shape[-1], dtype=srm.dtype, device=srm.device)
        self.register_buffer("mean", mean)
        self.register_buffer("cov", cov)
        self.register_buffer("cov_sqrt", sqrtm_psd(cov))

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Loss per image, shape (B,)."""
        x = self.feature(features)
        channels = self.mean.shape[0]
        self._check_channels(x, channels)
        mean, srm = feature_moments(x)
        eye = torch.eye(channels, dtype=srm.dtype, device=srm.device)
        cov = covariance(mean, srm) + self.eps * eye
        value = gaussian_w2(mean, cov, self.mean, self.cov, self.cov_sqrt)
        return value / channels if self.reduction == "mean" else value

    def extra_repr(self) -> str:
        return f"layer={self.layer!r}, eps={self.eps:g}, reduction={self.reduction!r}, swag={self.swag}"


# --- builders: run the backbone once on the target images ------------------------------------------
def _device_of(module: nn.Module) -> torch.device:
    for tensor in list(module.buffers()) + list(module.parameters()):
        return tensor.device
    return torch.device("cpu")


@torch.no_grad()
def extract_features(backbone: nn.Module, image: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """Activations of ``image`` (1, 3, H, W) in [0, 1] at ``layers``, without gradient, on the backbone's device."""
    if image.dim() != 4 or image.shape[1] != 3:
        raise ConfigError(f"expected an RGB image batch (B, 3, H, W), got shape {tuple(image.shape)}")
    backbone.validate(layers)
    feats = backbone(image.to(_device_of(backbone)), list(layers))
    return {k: v.detach() for k, v in feats.items()}


def _weighted_terms(
    layer_weights: Mapping[str, float],
    make: Callable[[str], Objective],
    what: str,
) -> Objective | None:
    terms = []
    for layer, weight in layer_weights.items():
        weight = float(weight)
        if not math.isfinite(weight) or weight < 0:
            raise ConfigError(f"{what} weight of layer {layer!r} must be finite and non-negative, got {weight}")
        if weight > 0:
            terms.append(weight * make(layer))
    return sum(terms) if terms else None


def style_objective(
    backbone: nn.Module,
    images: Sequence[torch.Tensor] | torch.Tensor,
    layer_weights: Mapping[str, float],
    *,
    loss: str = "gram",
    blend: Sequence[float] | None = None,
    normalize: str = "hw",
    eps: float = DEFAULT_W2_EPS,
    reduction: str = "mean",
    swag: bool = False,
    temperature: float = 1.0,
    names: Mapping[str, str] | None = None,
) -> Objective | None:
    """Weighted sum of one style loss per layer, with targets computed once from the style image(s).

    Args:
        backbone: The (frozen) network; called once per style image without gradient.
        images: Style image(s), each (1, 3, H, W) in [0, 1]; sizes may differ.
        layer_weights: Layer name -> weight (used as given; layers with weight 0 are left out).
        loss: ``"gram"`` or ``"w2"``.
        blend: One weight per style image (normalized; default equal).
        normalize: Gram normalization (``"hw"``/``"chw"``).
        eps: W2 covariance regularization.
        reduction: W2 reduction (``"mean"``/``"sum"``).
        swag: SWAG softmax before the statistics.
        temperature: SWAG temperature.
        names: Optional layer -> term name (default ``style:<layer>``).

    Returns:
        The weighted sum, or ``None`` if every weight is 0.
    """
    _check_choice("style loss", loss, STYLE_LOSSES)
    images = [images] if isinstance(images, torch.Tensor) else list(images)
    weights = blend_weights(blend, len(images))
    active = [layer for layer, w in layer_weights.items() if float(w) > 0]
    feats = [extract_features(backbone, img, active) for img in images] if active else []
    names = names or {}

    def make(layer: str) -> Objective:
        acts = [f[layer] for f in feats]
        name = names.get(layer)
        if loss == "gram":
            return GramStyleLoss(
                layer, acts, weights, normalize=normalize, swag=swag, temperature=temperature, name=name
            )
        return W2StyleLoss(
            layer, acts, weights, eps=eps, reduction=reduction, swag=swag, temperature=temperature, name=name
        )

    return _weighted_terms(layer_weights, make, "style")


def content_objective(
    backbone: nn.Module,
    image: torch.Tensor,
    layer_weights: Mapping[str, float],
    *,
    names: Mapping[str, str] | None = None,
) -> Objective | None:
    """Weighted sum of :class:`ContentLoss` terms with targets computed once from ``image`` (1, 3, H, W).

    Returns ``None`` if every weight is 0.
    """
    active = [layer for layer, w in layer_weights.items() if float(w) > 0]
    feats = extract_features(backbone, image, active) if active else {}
    names = names or {}
    return _weighted_terms(
        layer_weights, lambda layer: ContentLoss(layer, feats[layer], name=names.get(layer)), "content"
    )


def _check_choice(what: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise UnknownNameError(what, str(value), choices)
    return value
