"""Meta-device runs: shapes only, the user's hooks set aside and given back."""

from __future__ import annotations

import torch
from torch import nn

from paramviz.backbones.meta import hooks_set_aside, run_on_meta


def test_a_meta_run_leaves_the_users_hooks_out_and_in_place() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).double()
    seen, inside = [], []
    model[0].register_forward_hook(lambda m, i, o: seen.append(o))
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    with hooks_set_aside(model):
        model[1].register_forward_hook(lambda m, i, o: inside.append(o))
        run_on_meta(model, (5, 7))
    assert seen == []
    assert inside[0].is_meta and inside[0].shape == (1, 4, 3, 5) and inside[0].dtype == torch.float64
    model(torch.rand(1, 3, 5, 7, dtype=torch.float64))
    assert len(seen) == 2 and len(inside) == 1  # the user's hooks are back, the run's own are gone
    assert not model[0].weight.is_meta
