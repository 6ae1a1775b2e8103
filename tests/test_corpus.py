"""Every corpus architecture traces, lists its activations, bends a weight and an activation, and resets."""

import pytest
import torch

import torchbend as tb
from corpus import CASES


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_model_traces_bends_and_resets(case):
    model = case.build()
    bended = tb.BendedModule(model)
    args, kwargs = case.inputs()
    bended.trace(case.method, *args, **kwargs)
    assert bended.trace_report(case.method).rows[0][1] == "traced"
    table = bended.activations_table(case.method)
    assert len(table.names()) > 3 and any(shape.startswith("(") for rows in table.groups.values()
                                          for _, shape, _ in rows)
    assert bended.activation_shape(case.activation, fn=case.method) is not None

    plain = case.run(model)
    unbent = case.run(bended)
    assert torch.allclose(unbent, plain, atol=1e-6)

    with bended.bend(tb.Scale(case.weight_scale), case.weight):
        assert not torch.allclose(case.run(bended), plain, atol=1e-4)
    with bended.bend(tb.Bias(0.5), case.activation, fn=case.method):
        assert not torch.allclose(case.run(bended), plain, atol=1e-4)
    assert torch.equal(case.run(bended), unbent)
