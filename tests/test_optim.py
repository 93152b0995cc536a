import pytest
import torch

from paramviz.optim import FusedAdam, fused_adam_supported
from paramviz.render import OPTIMIZERS


def _params(seed: int = 0, device: str = "cpu") -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    shapes = [(2, 3, 8, 8), (17,)]
    return [torch.nn.Parameter(torch.randn(shape, generator=g).to(device)) for shape in shapes]


def _grad(step: int, index: int, shape: torch.Size) -> torch.Tensor | None:
    """The gradient of parameter ``index`` at ``step``; at step 2 the second parameter has none (it is left alone)."""
    if step == 2 and index == 1:
        return None
    return torch.randn(shape, generator=torch.Generator().manual_seed(100 * step + index))


def _steps(params: list[torch.nn.Parameter], opt: torch.optim.Optimizer, steps: range) -> None:
    for step in steps:
        opt.zero_grad(set_to_none=True)
        for i, p in enumerate(params):
            grad = _grad(step, i, p.shape)
            p.grad = None if grad is None else grad.to(p.device)
        opt.step()


def _run(opt_cls, steps: int, device: str = "cpu", **kwargs) -> tuple[list[torch.nn.Parameter], torch.optim.Optimizer]:
    params = _params(device=device)
    opt = opt_cls(params, **kwargs)
    _steps(params, opt, range(steps))
    return params, opt


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))]


@pytest.mark.parametrize("device", DEVICES)
def test_fused_adam_makes_exactly_torchs_fused_adam_updates_and_state(device):
    kwargs = {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6}
    ours, ours_opt = _run(FusedAdam, 6, device, **kwargs)
    theirs, theirs_opt = _run(lambda p, **kw: torch.optim.Adam(p, fused=True, **kw), 6, device, **kwargs)
    assert ours[0].device.type == device and ours_opt.state[ours[0]]["step"].device.type == device
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)
        state_a, state_b = ours_opt.state[a], theirs_opt.state[b]
        assert set(state_a) == set(state_b) == {"step", "exp_avg", "exp_avg_sq"}
        for key in state_a:
            assert torch.equal(state_a[key], state_b[key]), key
    assert float(ours_opt.state[ours[1]]["step"]) == 5  # skipped once
    assert not torch.equal(ours[0], _params()[0])  # it moved


def test_fused_adam_resumes_from_its_state_dict_as_if_never_stopped():
    straight, _ = _run(FusedAdam, 6, lr=0.1)
    params, opt = _run(FusedAdam, 3, lr=0.1)
    saved = opt.state_dict()
    copies = [torch.nn.Parameter(p.detach().clone()) for p in params]
    resumed = FusedAdam(copies, lr=0.1)
    resumed.load_state_dict(saved)
    _steps(copies, resumed, range(3, 6))
    for a, b in zip(straight, copies, strict=True):
        assert torch.equal(a, b)


def test_step_calls_the_closure_with_grad_enabled_and_returns_its_loss():
    p = torch.nn.Parameter(torch.tensor([3.0]))
    opt = FusedAdam([p], lr=0.5)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (p**2).sum()
        loss.backward()
        return loss

    losses = [float(opt.step(closure).detach()) for _ in range(20)]
    assert losses[0] == 9.0
    assert losses[-1] < 1.0


def test_zero_grad_drops_or_zeroes_the_gradients():
    p = torch.nn.Parameter(torch.ones(3))
    opt = FusedAdam([p])
    p.grad = torch.ones(3)
    opt.zero_grad(set_to_none=False)
    assert torch.equal(p.grad, torch.zeros(3))
    opt.zero_grad()
    assert p.grad is None


@pytest.mark.parametrize(
    "params",
    [
        [],
        [torch.zeros(3, dtype=torch.int64)],
        [torch.zeros(3, dtype=torch.complex64)],
        [torch.zeros(3), torch.zeros(3, dtype=torch.float64)],
        [torch.zeros(3, device="meta")],
    ],
    ids=["none", "integer", "complex", "two-dtypes", "meta-device"],
)
def test_parameters_the_fused_kernel_cannot_update_are_refused_and_the_registry_falls_back(params):
    assert not fused_adam_supported(params)
    with pytest.raises(ValueError, match=r"use torch\.optim\.Adam"):
        FusedAdam(params)
    if params and all(p.is_floating_point() for p in params):
        leaves = [torch.nn.Parameter(p) for p in params]
        assert type(OPTIMIZERS.get("adam")(leaves, 0.05)) is torch.optim.Adam


def test_the_registry_adam_is_the_fused_one_where_it_runs():
    assert type(OPTIMIZERS.get("adam")(_params(), 0.05)) is FusedAdam


def test_step_runs_the_step_hooks_and_update_is_the_same_update_without_them():
    by_step, by_update = _params(), _params()
    calls = []
    stepped, updated = FusedAdam(by_step, lr=0.1), FusedAdam(by_update, lr=0.1)
    stepped.register_step_post_hook(lambda opt, args, kwargs: calls.append("step"))
    updated.register_step_post_hook(lambda opt, args, kwargs: calls.append("update"))
    for params in (by_step, by_update):
        for i, p in enumerate(params):
            p.grad = _grad(0, i, p.shape)
    stepped.step()
    updated.update()
    assert calls == ["step"]
    for a, b in zip(by_step, by_update, strict=True):
        assert torch.equal(a, b)
