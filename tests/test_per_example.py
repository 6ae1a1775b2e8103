"""Per-example parameter values: one batched call equals the loop of single calls."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

import torchbend as tb
from conftest import assert_unchanged, state_snapshot
from torchbend.core import calls as core_calls
from torchbend.errors import BendingError


def looped(bended, fn, inputs, params, values):
    """The reference: one call per item, the parameters set to that item's values, then restored."""
    saved = [p.value for p in params]
    outs = []
    try:
        for i in range(len(values[0])):
            for p, column in zip(params, values):
                p.value = float(column[i])
            outs.append(getattr(bended, fn)(inputs[i : i + 1]))
    finally:
        for p, v in zip(params, saved):
            p.value = v
    return torch.cat(outs)


@pytest.fixture
def bended(vae, z):
    b = tb.BendedModule(vae)
    b.trace("decode", z=z)
    return b


def grid(z, *columns):
    """`z` repeated once per value, and each column repeated once per latent (value-major)."""
    n = len(columns[0])
    return z.repeat(n, 1), [torch.tensor(c).repeat_interleave(len(z)) for c in columns]


def no_fallback(monkeypatch, bended):
    def refuse(*args, **kwargs):
        raise AssertionError("the call was split into one call per group")

    monkeypatch.setattr(core_calls, "per_group_calls", refuse)


def test_activation_bend_values_per_item_equal_single_calls(bended, z, monkeypatch):
    gain = tb.BendingParameter("gain", 1.0)
    bended.bend(tb.Scale(gain), "decoder_net_convt0", fn="decode")
    inputs, (values,) = grid(z[:4], [0.0, 0.5, 2.0])
    no_fallback(monkeypatch, bended)
    out = bended.decode(inputs, per_example={"gain": values})
    assert out.shape == (12, 1, 28, 28)
    torch.testing.assert_close(out, looped(bended, "decode", inputs, [gain], [values]))
    assert not torch.allclose(out[:4], out[4:8])  # the values did change the items
    assert gain.value == 1.0


def test_weight_bend_runs_groups_under_vmap_and_equals_single_calls(bended, z, monkeypatch):
    scale = tb.BendingParameter("scale", 1.0)
    bended.bend(tb.Scale(scale), "decoder.net.convt1.weight")
    inputs, (values,) = grid(z[:3], [0.0, 1.0, 3.0, -1.0])
    vmapped = []
    real_vmap = torch.func.vmap
    monkeypatch.setattr(torch.func, "vmap", lambda *a, **k: vmapped.append(1) or real_vmap(*a, **k))
    no_fallback(monkeypatch, bended)
    out = bended.decode(inputs, per_example={"scale": values})
    assert vmapped, "equal-size groups of a weight bend run under torch.func.vmap"
    torch.testing.assert_close(out, looped(bended, "decode", inputs, [scale], [values]))


def test_composed_bends_selections_and_unequal_groups(bended, z, monkeypatch):
    gain = tb.BendingParameter("gain", 1.0)
    shift = tb.BendingParameter("shift", 0.0)
    scale = tb.BendingParameter("scale", 1.0)
    bended.bend(tb.Scale(gain), "decoder_net_convt0", fn="decode")
    bended.bend(tb.Bias(shift), "decoder_net_convt0", fn="decode", channels=[0, 2])
    bended.bend(tb.Scale(scale), "decoder.net.convt0.weight")
    bended.bend(tb.Scale(2 * scale), "decoder.net.convt0.weight")  # composes with the one above
    no_fallback(monkeypatch, bended)
    inputs = z[:5]
    columns = [[0.5, 0.5, 2.0, 1.0, 2.0], [0.0, 0.3, 0.3, -1.0, 0.3], [1.0, 1.0, 0.5, 0.5, 0.5]]
    out = bended.decode(inputs, per_example=dict(zip(["gain", "shift", "scale"], columns)))
    torch.testing.assert_close(out, looped(bended, "decode", inputs, [gain, shift, scale], columns))


def test_methods_that_cannot_be_split_run_once_per_group(vae, z, monkeypatch):
    bended = tb.BendedModule(vae)  # decode never traced: its own code runs, on a view
    scale = tb.BendingParameter("scale", 1.0)
    bended.bend(tb.Scale(scale), "decoder.net.convt1.weight")
    calls = []
    real = core_calls.per_group_calls
    monkeypatch.setattr(core_calls, "per_group_calls", lambda *a: calls.append(1) or real(*a))
    inputs, (values,) = grid(z[:2], [1.0, 0.0, 2.0])
    out = bended.decode(inputs, per_example={"scale": values})
    assert calls
    torch.testing.assert_close(out, looped(bended, "decode", inputs, [scale], [values]))


def test_nothing_is_set_or_written_and_other_threads_see_live_values(bended, vae, z):
    scale = tb.BendingParameter("scale", 1.0)
    bended.bend(tb.Scale(scale), "decoder.net.convt1.weight")
    bended.bend(tb.Scale(scale), "decoder_net_convt0", fn="decode")
    before = state_snapshot(vae)
    plain_bent = bended.decode(z)
    inputs, (values,) = grid(z, [0.0, 3.0])
    seen = []

    def other() -> None:
        for _ in range(20):
            seen.append(torch.equal(bended.decode(z), plain_bent))

    thread = threading.Thread(target=other)
    thread.start()
    for _ in range(5):
        bended.decode(inputs, per_example={"scale": values})
    thread.join()
    assert all(seen) and len(seen) == 20
    assert scale.value == 1.0
    assert_unchanged(vae, before)


def test_bad_per_example_values_are_refused_by_name(bended, z):
    gain = tb.BendingParameter("gain", 1.0, range=(0.0, 2.0))
    bended.bend(tb.Scale(gain), "decoder_net_convt0", fn="decode")
    with pytest.raises(tb.UnknownNameError, match="gain"):
        bended.decode(z, per_example={"gian": [1.0] * len(z)})
    with pytest.raises(BendingError, match=r"per_example\['gain'\]\[1\].*outside its range"):
        bended.decode(z[:2], per_example={"gain": [1.0, 5.0]})
    with pytest.raises(BendingError, match=r"batch of 3 \(first dimensions: \[16\]\)"):
        bended.decode(z, per_example={"gain": [1.0, 1.5, 2.0]})
    with pytest.raises(BendingError, match="1-d"):
        bended.decode(z, per_example={"gain": torch.ones(4, 4)})
    with pytest.raises(BendingError, match="dict"):
        bended.decode(z, per_example=[1.0])


def test_a_method_with_its_own_per_example_argument_is_refused_at_trace_time():
    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def forward(self, x, per_example=None):
            return self.lin(x)

    with pytest.raises(BendingError, match="own 'per_example' argument"):
        tb.BendedModule(Model()).trace("forward", torch.zeros(1, 2))


def test_call_with_values_for_one_call_only(bended, z):
    gain = tb.BendingParameter("gain", 1.0)
    bended.bend(tb.Scale(gain), "decoder_net_convt0", fn="decode")
    bended.bend(tb.Scale(gain), "decoder.net.convt1.weight")
    out = core_calls.call_with(bended.engine, "decode", (), {"z": z}, {"gain": 0.25})
    assert gain.value == 1.0
    gain.value = 0.25
    assert torch.equal(out, bended.decode(z))
    with pytest.raises(tb.UnknownNameError):
        core_calls.call_with(bended.engine, "decode", (), {"z": z}, {"gane": 0.25})


def test_an_output_without_a_batch_dimension_cannot_be_split(vae, z):
    class Summary(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(8, 3)

        def forward(self, x):
            return self.lin(x).mean(0)  # one row for the whole batch

    bended = tb.BendedModule(Summary())  # untraced: split into one call per group, outputs joined
    gain = tb.BendingParameter("gain", 1.0)
    bended.bend(tb.Scale(gain), "lin.weight")
    with pytest.raises(BendingError, match="first dimension is the batch"):
        bended(z[:4], per_example={"gain": [1.0, 1.0, 2.0, 2.0]})
