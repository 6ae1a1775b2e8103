"""Every corpus architecture traces, lists its activations, bends a weight and an activation, and resets; the
real transformers and diffusers architectures of corpus_models.py (slow) trace at op level, bend mid-graph, reset
exactly, script and export (docs/corpus.md)."""

import importlib.util

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
    assert len(table.names()) > 3 and any(
        shape.startswith("(") for rows in table.groups.values() for _, shape, _ in rows
    )
    assert bended.activation_shape(case.activation, fn=case.method) is not None

    plain = case.run(model)
    unbent = case.run(bended)
    assert torch.allclose(unbent, plain, atol=1e-6)

    with bended.bend(tb.Scale(case.weight_scale), case.weight):
        assert not torch.allclose(case.run(bended), plain, atol=1e-4)
    with bended.bend(tb.Bias(0.5), case.activation, fn=case.method):
        assert not torch.allclose(case.run(bended), plain, atol=1e-4)
    assert torch.equal(case.run(bended), unbent)


# --- models from the wild: real transformers / diffusers architectures, tiny configs (tests/corpus_models.py) ----

from corpus_models import WILD, Wild, mid_activation  # noqa: E402

wild = pytest.mark.skipif(
    not all(importlib.util.find_spec(p) for p in ("transformers", "diffusers")),
    reason="needs transformers and diffusers (pip install torchbend[dev])",
)

SCRIPTED = [
    "GPT2LMHeadModel",
    "MambaForCausalLM",
    "T5ForConditionalGeneration",
    "ViTModel",
    "UNet2DConditionModel",
    "AutoencoderKL",
]  # one of each family; benchmarks/corpus.py tries them all


def _bended(case: Wild):
    model = case.build()
    plain = case.run(model)
    bended = tb.BendedModule(model)
    args, kwargs = case.inputs()
    bended.trace(case.method, *args, **kwargs)
    return model, bended, plain


@pytest.mark.slow
@wild
@pytest.mark.parametrize("case", WILD, ids=[c.name.split()[0] for c in WILD])
def test_wild_model_traces_at_op_level_bends_and_resets(case):
    model, bended, plain = _bended(case)
    report = bended.trace_report(case.method).rows
    assert report[0][1] == "traced" and not [row for row in report if row[0] == "fallback"]  # every op a node
    assert all(torch.equal(a, b) for a, b in zip(case.run(bended), plain, strict=True))
    name = mid_activation(bended, case, plain)  # asserts that bending it changes the output
    with bended.bend(tb.Scale(1.5), name, fn=case.method):
        bent = case.run(bended)
    assert all(torch.equal(a, b) for a, b in zip(case.run(bended), plain, strict=True))  # reset is exact
    assert len(bent) == len(plain)


@pytest.mark.slow
@wild
@pytest.mark.parametrize("name", SCRIPTED)
def test_wild_model_scripts_with_its_bend(name, tmp_path):
    case = next(c for c in WILD if c.name == name)
    _, bended, plain = _bended(case)
    activation = mid_activation(bended, case, plain)
    bended.bend(tb.Bias(tb.BendingParameter("shift", 0.5)), activation, fn=case.method)
    bent = case.run(bended)
    scripted = bended.script()
    torch.jit.save(scripted, tmp_path / "m.ts")
    loaded = torch.jit.load(str(tmp_path / "m.ts"))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(case.run(loaded), bent, strict=True))
    loaded.set_shift(0.0)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(case.run(loaded), plain, strict=True))


@pytest.mark.slow
@wild
def test_wild_model_exports_with_torch_export(tmp_path):
    case = next(c for c in WILD if c.name == "BertModel")
    _, bended, plain = _bended(case)
    bended.bend(tb.Bias(tb.BendingParameter("shift", 0.5)), mid_activation(bended, case, plain), fn=case.method)
    (ids,), _ = case.inputs()
    program = torch.export.load(str(bended.export(tmp_path / "bert.pt2", case.method, ids))).module()
    out = program(ids[:1], shift=torch.tensor(0.5))  # a dict of the output's tensors, at another batch size
    assert set(out) == {"last_hidden_state", "pooler_output"}
    assert torch.allclose(out["last_hidden_state"], bended(ids[:1]).last_hidden_state, atol=1e-5)
    assert torch.allclose(program(ids, shift=torch.tensor(0.0))["pooler_output"], plain[1], atol=1e-5)
