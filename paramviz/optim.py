"""Adam as one fused kernel call per step: torch's fused Adam update without ``torch.optim.Adam``'s per-step Python.

``torch.optim.Adam(fused=True)`` runs the whole update as one kernel, but each ``step()`` first goes through its
Python: hooks and profiler labels, state checks, and the grouping of the tensors by device and dtype. Right after
a network's forward and backward that Python runs with cold caches: measured on 2 CPU cores (EfficientNet-Lite0
to ``stage4``, 128 px), ``step()`` takes about 0.46 ms inside an optimization step against 0.04 ms in a loop of
steps alone; :meth:`FusedAdam.update` about 0.19 ms and the fused kernel alone about 0.11 ms
(``benchmarks/step_overhead.py`` measures whole steps). :class:`FusedAdam` calls the kernel directly, so it makes
exactly the same updates (the same kernel, with the same arguments) and keeps the same state (``step``,
``exp_avg``, ``exp_avg_sq``) as ``torch.optim.Adam(fused=True)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

#: Devices where torch has a fused Adam kernel.
FUSED_ADAM_DEVICES = ("cpu", "cuda")


def fused_adam_supported(params: Iterable[torch.Tensor]) -> bool:
    """Whether :class:`FusedAdam` can update ``params``: floating point, one dtype, one device with a fused kernel."""
    params = list(params)
    if not params or not hasattr(torch, "_fused_adam_"):
        return False
    first = params[0]
    return all(
        p.is_floating_point()  # complex tensors are not
        and p.device == first.device
        and p.dtype == first.dtype
        and p.device.type in FUSED_ADAM_DEVICES
        for p in params
    )


class FusedAdam(torch.optim.Optimizer):
    """Adam (no weight decay, no AMSGrad) whose update is torch's fused kernel, called directly.

    Same updates and state as ``torch.optim.Adam(params, lr, betas, eps, fused=True)`` (tested); the step
    count stays on the parameters' device (no host-device synchronization on CUDA). :meth:`step` runs the step
    hooks as for any optimizer, :meth:`update` is the update alone; ``state_dict`` works as for any optimizer.

    Args:
        params: Parameters to optimize, floating point, one dtype, on one device in :data:`FUSED_ADAM_DEVICES`
            (see :func:`fused_adam_supported`).
        lr: Learning rate.
        betas: Coefficients of the running averages of the gradient and of its square.
        eps: Added to the denominator.

    Raises:
        ValueError: Parameters the fused kernel cannot update (use ``torch.optim.Adam`` for those).
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        params = list(params)
        if not fused_adam_supported(params):
            raise ValueError(
                "FusedAdam needs floating-point parameters of one dtype on one device among "
                f"{', '.join(FUSED_ADAM_DEVICES)}; use torch.optim.Adam for these parameters"
            )
        super().__init__(params, {"lr": float(lr), "betas": tuple(betas), "eps": float(eps)})

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop (or zero) every parameter's gradient."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_().zero_()

    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:  # type: ignore[override]
        """``closure()`` (if given, with grad enabled), then :meth:`update`; returns the closure's loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.update()
        return loss

    def update(self) -> None:
        """One Adam update of the parameters that have a gradient, without the step hooks.

        :meth:`step` is this behind torch's per-step wrapper of every optimizer (a profiler label and the hooks);
        :func:`paramviz.render.render`, which registers no hooks on the optimizer it makes, calls ``update``.
        """
        with torch.no_grad():
            for group in self.param_groups:
                params = [p for p in group["params"] if p.grad is not None]
                if not params:
                    continue
                states = [self._state(p) for p in params]
                steps = [s["step"] for s in states]
                torch._foreach_add_(steps, 1)
                beta1, beta2 = group["betas"]
                torch._fused_adam_(
                    params,
                    [p.grad for p in params],
                    [s["exp_avg"] for s in states],
                    [s["exp_avg_sq"] for s in states],
                    [],
                    steps,
                    lr=group["lr"],
                    beta1=beta1,
                    beta2=beta2,
                    weight_decay=0.0,
                    eps=group["eps"],
                    amsgrad=False,
                    maximize=False,
                )

    def _state(self, p: torch.Tensor) -> dict[str, torch.Tensor]:
        state = self.state[p]
        if not state:  # as torch's fused Adam: a float32 step count on the parameter's device
            state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state
