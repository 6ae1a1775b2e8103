"""Models dispatched by accelerate (weights offloaded to CPU or disk, on the meta device between calls)."""

import copy

import pytest
import torch

import torchbend as tb
from conftest import ConvVAE, seeded

accelerate = pytest.importorskip("accelerate")
transformers = pytest.importorskip("transformers")


def tiny_gpt2():
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_layer=2, n_embd=32, n_head=2, vocab_size=50, n_positions=16, bos_token_id=0, eos_token_id=0
    )
    return transformers.GPT2LMHeadModel(config).eval()


@pytest.mark.parametrize("offload", ["cpu", "disk"])
def test_offloaded_gpt2_traces_bends_and_resets(offload, tmp_path):
    model = tiny_gpt2()
    reference = tb.BendedModule(copy.deepcopy(model))
    ids = torch.randint(0, 50, (1, 8), generator=torch.Generator().manual_seed(0))
    plain = model(ids, use_cache=False).logits
    if offload == "cpu":
        accelerate.cpu_offload(model, execution_device=torch.device("cpu"))
    else:
        accelerate.disk_offload(model, str(tmp_path), execution_device=torch.device("cpu"))
    name = "transformer.h.0.attn.c_attn.weight"
    assert model.get_parameter(name).device.type == "meta"
    bended = tb.BendedModule(model)
    bended.trace("forward", input_ids=ids, use_cache=False)
    assert bended.trace_report().rows[0][1] == "traced"
    reference.trace("forward", input_ids=ids, use_cache=False)
    for b in (bended, reference):
        b.bend(tb.Scale(2.0), name)
        b.bend(tb.Scale(0.5), "transformer_h_1_ln_2", fn="forward")
    out = bended(input_ids=ids, use_cache=False).logits
    assert not torch.allclose(out, plain)
    assert torch.allclose(out, reference(input_ids=ids, use_cache=False).logits, atol=1e-5)
    assert torch.allclose(model(ids, use_cache=False).logits, plain, atol=1e-6)  # the plain model is untouched
    assert model.get_parameter(name).device.type == "meta"
    bended.reset()
    assert torch.allclose(bended(input_ids=ids, use_cache=False).logits, plain, atol=1e-6)


def test_offloaded_vae_bends_its_decoder(z):
    vae = seeded(ConvVAE())
    plain = vae.decode(z)
    expected = tb.BendedModule(copy.deepcopy(vae))
    accelerate.cpu_offload(vae, execution_device=torch.device("cpu"))
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    for b in (bended, expected):
        b.bend(tb.Mask(0.5, seed=0), "decoder.net.convt0.weight")
    assert torch.allclose(bended.decode(z), expected.decode(z), atol=1e-6)
    assert torch.allclose(vae.decode(z), plain, atol=1e-6)
