"""The CPU stand-in for CUDA's sync-debug mode (tests/host_reads.py) sees what would synchronize, and only that."""

from __future__ import annotations

import pytest
import torch
from host_reads import HostRead, HostReadGuard

DEVICE_READS = {
    "float": lambda x, host: float((x * 2).detach().sum()),
    "bool": lambda x, host: bool(torch.isfinite(x * 2).all()),
    "item": lambda x, host: (x * 2).detach().sum().item(),
    "tolist": lambda x, host: (x * 2).tolist(),
    "cpu": lambda x, host: (x * 2).cpu(),
    "numpy": lambda x, host: (x * 2).detach().numpy(),
    "mask index": lambda x, host: x[x > 0.5],
    "nonzero": lambda x, host: torch.nonzero(x > 0.5),
    "copy into a host tensor": lambda x, host: host.float().copy_(x[:4].detach()),
    "read a gradient": lambda x, host: ((x * 3).sum().backward(), float(x.grad.sum())),
    "read a moved draw": lambda x, host: float(host.to(x.device, non_blocking=True)[0, 0]),
    "a blocking move to the device": lambda x, host: host.to(x.device),
}
HOST_READS = {
    "tolist of a host tensor": lambda x, host: host.tolist(),
    "int of a slice": lambda x, host: int(host[0, 0]),
    "computed on the host": lambda x, host: int((host + 1).sum()),
    "slice by host values": lambda x, host: x[host[0, 0].item() : host[0, 0].item() + 2] * 2,
    "index by a host tensor": lambda x, host: x[host[:, 0]],
    "no read": lambda x, host: (x * host[:, 0].float().mean()).sum(),
    "a factory value": lambda x, host: float(torch.tensor(3.0) + 1),
    "an asynchronous move to the device": lambda x, host: host.to(x.device, non_blocking=True),
}


def guarded(read):
    x = torch.rand(8, requires_grad=True)  # made before the guard: a device value, like a parameter
    with HostReadGuard() as guard:
        host = torch.randint(0, 4, (4, 2)).cpu()  # kept on the host on purpose, like crop offsets
        guard.enforcing = True
        read(x, host)


@pytest.mark.parametrize("name", DEVICE_READS)
def test_a_read_of_a_device_value_is_flagged(name):
    with pytest.raises(HostRead):
        guarded(DEVICE_READS[name])


@pytest.mark.parametrize("name", HOST_READS)
def test_a_read_of_a_host_value_is_not(name):
    guarded(HOST_READS[name])


def test_nothing_is_flagged_before_enforcing_and_the_tensor_methods_come_back():
    original = torch.Tensor.tolist, torch.Tensor.cpu, torch.Tensor.to
    x = torch.rand(3)
    with HostReadGuard():
        assert float((x * 2).sum()) > 0 and len((x * 2).tolist()) == 3
    assert (torch.Tensor.tolist, torch.Tensor.cpu, torch.Tensor.to) == original
