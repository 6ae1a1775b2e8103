import torch

import torchbend as tb
from conftest import Recurrent, Tied, assert_unchanged, seeded, state_snapshot
from torchbend.runtime.view import ModuleView
from torchbend.runtime.weights import BentWeights


def test_bent_tied_weights_reach_every_slot_of_a_view_and_never_the_model():
    model = seeded(Tied())
    snapshot = state_snapshot(model)
    weights = BentWeights(model)
    entry = weights.compute({"enc.weight": [(tb.Scale(2.0), None)]})["enc.weight"]
    assert len(entry.slots) == 2  # tied: enc and dec
    view = ModuleView(model, {slot: entry.bent for slot in entry.slots})
    assert torch.equal(view.root.enc.weight, snapshot["enc.weight"][1] * 2)
    assert view.root.dec.weight is view.root.enc.weight
    x = torch.randn(3, 6)
    expected = torch.nn.functional.linear(torch.tanh(x @ (2 * model.enc.weight).t()), (2 * model.enc.weight).t())
    assert torch.allclose(view.root(x), expected)
    assert_unchanged(model, snapshot)


def test_entries_know_when_their_original_was_replaced_or_modified():
    model = seeded(Recurrent())
    weights = BentWeights(model)
    entry = weights.compute({"head.weight": [(tb.Scale(2.0), None)]})["head.weight"]
    assert entry.current()
    with torch.no_grad():
        model.head.weight.add_(1)
    assert not entry.current()
    entry = weights.compute({"head.weight": [(tb.Scale(2.0), None)]})["head.weight"]
    assert entry.current() and torch.equal(entry.bent, 2 * model.head.weight)
    model.head.weight = torch.nn.Parameter(torch.zeros(2, 5))
    assert not entry.current()


def test_cached_results_are_reused_until_a_parameter_they_read_changes():
    model = seeded(Recurrent())
    weights = BentWeights(model)
    gain = tb.BendingParameter("gain", 2.0)
    plan = {"head.weight": [(tb.Scale(gain), None)], "head.bias": [(tb.Scale(2.0), None)]}
    first = weights.compute(plan)
    gain.value = 3.0
    second = weights.compute(plan)
    assert second["head.bias"] is first["head.bias"]
    assert second["head.weight"] is not first["head.weight"]
    assert torch.equal(second["head.weight"].bent, 3 * model.head.weight)
    assert list(weights.compute({"head.weight": plan["head.weight"]})) == ["head.weight"]
