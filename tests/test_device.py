import pytest
import torch
from host_reads import DEVICES

from paramviz.device import move_ahead, resolve_device
from paramviz.errors import ConfigError


def test_auto_picks_cuda_only_when_present():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert resolve_device("cpu") == torch.device("cpu")


def test_bad_device_names_are_explained():
    with pytest.raises(ConfigError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")
    with pytest.raises(ConfigError, match="cannot run paramviz"):
        resolve_device("meta")
    if not torch.backends.mps.is_available():
        with pytest.raises(ConfigError, match="MPS is not available"):
            resolve_device("mps")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.parametrize("device", DEVICES)
def test_move_ahead_gives_the_same_values_on_the_device(device):
    host = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    moved = move_ahead(host, device)
    assert moved.device.type == device
    torch.testing.assert_close(moved.cpu(), host, rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_move_ahead_does_not_synchronize_on_cuda():
    host = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    try:
        torch.cuda.set_sync_debug_mode("error")
        moved = move_ahead(host, "cuda")
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.testing.assert_close(moved.cpu(), host, rtol=0, atol=0)
