from __future__ import annotations

import pytest
import torch

from paramviz.objectives.activation import Channel, Direction
from paramviz.objectives.base import (
    Objective,
    WeightedSum,
    batch_size_of,
    total_weight_is_zero,
)
from paramviz.objectives.penalties import INPUT_KEY, L1


def feats(batch: int = 3) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {
        "a": torch.randn(batch, 4, 5, 5, generator=gen),
        "b": torch.randn(batch, 6, generator=gen),
        INPUT_KEY: torch.rand(batch, 3, 8, 8, generator=gen),
    }


class Returns(Objective):
    """A leaf that returns a fixed tensor, to test shape checks."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__("returns")
        self.value = value

    def layers(self) -> set[str]:
        return {"a"}

    def forward(self, features):
        return self.value


def test_flat_sum_of_many_terms_is_one_weighted_sum_of_leaves():
    terms = [Channel("a", i % 4) for i in range(40)]
    total = sum(terms)
    assert isinstance(total, WeightedSum)
    assert len(total.leaves()) == 40
    assert all(not isinstance(leaf, WeightedSum) for _, leaf in total.leaves())
    assert [leaf for _, leaf in total.leaves()] == terms
    nested = (terms[0] + terms[1]) + (terms[2] + (terms[3] + terms[4]))
    assert [leaf for _, leaf in nested.leaves()] == terms[:5]


def test_sum_of_one_objective_is_the_objective_itself():
    a = Channel("a", 0)
    assert sum([a]) is a


def test_subtraction_and_negation_weights_and_values():
    a, b = Channel("a", 0), Channel("b", 1)
    f = feats()
    diff = a - b
    assert [w for w, _ in diff.leaves()] == [1.0, -1.0]
    torch.testing.assert_close(diff(f), a(f) - b(f))
    torch.testing.assert_close((-a)(f), -a(f))


def test_scalar_multiplication_and_division_compose():
    a, b = Channel("a", 0), Channel("b", 1)
    f = feats()
    obj = 2 * a / 4
    assert obj.leaves() == [(0.5, a)]
    torch.testing.assert_close(obj(f), 0.5 * a(f))
    mixed = 2 * (a + 3 * b) - b / 2
    assert [w for w, _ in mixed.leaves()] == [2.0, 6.0, -0.5]
    torch.testing.assert_close(mixed(f), 2 * a(f) + 5.5 * b(f))


@pytest.mark.parametrize("zero", [0, 0.0])
def test_division_by_zero_raises(zero):
    with pytest.raises(ZeroDivisionError, match="channel:a:0"):
        Channel("a", 0) / zero


@pytest.mark.parametrize("other", ["2", True, None, torch.tensor(2.0)])
def test_multiplication_refuses_non_scalars(other):
    with pytest.raises(TypeError):
        Channel("a", 0) * other  # noqa: B018


@pytest.mark.parametrize("other", [1, 0.5, "2", None])
def test_addition_refuses_non_objectives_other_than_zero(other):
    with pytest.raises(TypeError):
        Channel("a", 0) + other  # noqa: B018
    with pytest.raises(TypeError):
        other + Channel("a", 0)  # noqa: B018


def test_adding_zero_is_identity():
    a = Channel("a", 0)
    assert a + 0 is a
    assert 0 + a is a


def test_terms_sum_to_total_and_names_are_unique():
    a = Channel("a", 0)
    obj = a + 0.5 * L1() + 3 * a + Channel("b", 2)
    total, terms = obj.evaluate(feats())
    assert list(terms) == ["channel:a:0", "l1", "channel:a:0#2", "channel:b:2"]
    torch.testing.assert_close(torch.stack(list(terms.values())).sum(0), total)
    torch.testing.assert_close(terms["channel:a:0#2"], 3 * a(feats()))
    assert total.shape == (3,)


def test_leaf_evaluate_returns_its_own_term():
    a = Channel("a", 1)
    total, terms = a.evaluate(feats())
    assert list(terms) == [a.name]
    torch.testing.assert_close(terms[a.name], total)


def test_layers_is_the_union_of_the_terms_layers():
    obj = Channel("a", 0) + Channel("b", 0) + L1() + Channel("a", 1)
    assert obj.layers() == {"a", "b", INPUT_KEY}


def test_a_scalar_loss_is_expanded_to_one_per_image():
    total, _ = Returns(torch.tensor(2.0)).evaluate(feats(batch=4))
    assert total.shape == (4,)


@pytest.mark.parametrize("shape", [(2,), (3, 1), (3, 2)])
def test_a_loss_of_the_wrong_shape_is_refused(shape):
    with pytest.raises(RuntimeError, match="one loss per image"):
        Returns(torch.zeros(shape)).evaluate(feats(batch=3))
    with pytest.raises(RuntimeError, match="one loss per image"):
        (Returns(torch.zeros(shape)) + Channel("a", 0)).evaluate(feats(batch=3))


def test_total_weight_is_zero():
    a = Channel("a", 0)
    assert total_weight_is_zero(0 * a)
    assert total_weight_is_zero(0 * a + 0 * L1())
    assert not total_weight_is_zero(a)
    assert not total_weight_is_zero(a - a)  # weights 1 and -1: the terms still get gradients


def test_weighted_sum_is_a_module_holding_its_leaves():
    d = Direction("a", [1.0, 0.0, 0.0, 0.0])
    obj = Channel("a", 0) + 2 * d
    assert "terms_list.1.vector" in obj.state_dict()
    obj.to(torch.float64)
    assert d.vector.dtype == torch.float64


def test_batch_size_of():
    assert batch_size_of(feats(batch=5)) == 5
    assert batch_size_of({}) is None
