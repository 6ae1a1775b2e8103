import torch

import torchbend as tb
from conftest import Recurrent, Tied, assert_unchanged, seeded, state_snapshot
from torchbend.weights import BentWeights


def test_swap_puts_bent_weights_in_place_and_restores_the_same_objects():
    model = seeded(Tied())
    snapshot = state_snapshot(model)
    weights = BentWeights(model)
    weights.compute({"enc.weight": [(tb.Scale(2.0), None)]})
    assert len(weights.entries["enc.weight"].slots) == 2  # tied: enc and dec
    saved = weights.swap_in()
    assert torch.equal(model.enc.weight, snapshot["enc.weight"][1] * 2)
    assert model.dec.weight is model.enc.weight
    weights.swap_out(saved)
    assert_unchanged(model, snapshot)


def test_changed_detects_replaced_and_modified_originals():
    model = seeded(Recurrent())
    weights = BentWeights(model)
    weights.compute({"head.weight": [(tb.Scale(2.0), None)]})
    assert weights.changed() == set()
    with torch.no_grad():
        model.head.weight.add_(1)
    assert weights.changed() == {"head.weight"}
    weights.compute({"head.weight": [(tb.Scale(2.0), None)]})
    model.head.weight = torch.nn.Parameter(torch.zeros(2, 5))
    assert weights.changed() == {"head.weight"}


def test_only_recomputes_the_named_weights():
    model = seeded(Recurrent())
    weights = BentWeights(model)
    plan = {"head.weight": [(tb.Scale(2.0), None)], "head.bias": [(tb.Scale(2.0), None)]}
    weights.compute(plan)
    before = weights.entries["head.bias"].bent
    weights.compute(plan, only={"head.weight"})
    assert weights.entries["head.bias"].bent is before
    weights.compute({"head.weight": plan["head.weight"]})
    assert list(weights.entries) == ["head.weight"]
