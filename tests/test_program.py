import builtins

import pytest
import torch

import torchbend as tb
from conftest import Residual, seeded
from torchbend.runtime.program import ActivationBend, Program
from torchbend.runtime.view import ModuleView
from torchbend.tracing.record import trace_method


def test_program_reads_the_live_module_and_inserts_bend_nodes():
    model = seeded(Residual())
    x = torch.randn(2, 4, 6)
    record = trace_method(model, "forward", (x,), {})
    plain = Program(record, model).bind(ModuleView(model))
    assert torch.equal(plain.run((x,), {}, {}), model(x))
    with torch.no_grad():
        model.conv2.bias.add_(1.0)  # the program sees the module as it is now
    assert torch.equal(plain.run((x,), {}, {}), model(x))
    program = Program(record, model, {"relu": ActivationBend([(tb.Scale(0.0), None)])})
    assert "relu_bended = self.b.relu(relu)" in program.code
    bent = program.bind(ModuleView(model))
    assert torch.allclose(bent.run((x,), {}, {}), x + model.conv2.bias.view(1, -1, 1))
    assert "relu_bended" not in plain.program.code  # the traced graph itself is untouched


def test_runtime_inputs_become_keyword_inputs():
    class Shift(tb.BendingCallback):
        def forward(self, x, state, shift=None):
            return x if shift is None else x + shift

    model = seeded(Residual())
    x = torch.randn(2, 4, 6)
    record = trace_method(model, "forward", (x,), {})
    program = Program(record, model, {"add": ActivationBend([(Shift(), None)])})
    assert program.runtime_inputs == ("shift",)
    bound = program.bind(ModuleView(model))
    assert torch.equal(bound.run((x,), {}, {}), model(x))
    assert torch.equal(bound.run((x,), {}, {"shift": 2.0}), model(x) + 2.0)


def test_a_crafted_tensor_name_is_refused_never_run(monkeypatch):
    marker = "tb_pwned_program"
    name = f'training") and 0 or setattr(__import__("builtins"), "{marker}", 1) or ("'
    monkeypatch.delattr(builtins, marker, raising=False)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer(name, torch.ones(3))

        def forward(self, x):
            return x * getattr(self, name)

    bended = tb.BendedModule(Model())
    with pytest.raises(tb.TraceError, match="cannot be written into generated code"):
        bended.trace("forward", torch.randn(2, 3))
        bended(torch.randn(2, 3))
    assert not hasattr(builtins, marker)
