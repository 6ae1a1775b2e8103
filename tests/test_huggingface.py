"""Models from the libraries users load from: Hugging Face transformers and diffusers (small configs, no download)."""

import pytest
import torch

import torchbend as tb

transformers = pytest.importorskip("transformers")
diffusers = pytest.importorskip("diffusers")


def gpt2():
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=64, bos_token_id=0, eos_token_id=0
    )
    return transformers.GPT2LMHeadModel(config).eval()


def unet():
    torch.manual_seed(0)
    return diffusers.UNet2DModel(
        sample_size=16,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
        attention_head_dim=8,
    ).eval()


def test_gpt2_traces_bends_and_resets():
    model = gpt2()
    ids = torch.randint(0, 100, (2, 10), generator=torch.Generator().manual_seed(1))
    bended = tb.BendedModule(model)
    bended.trace("forward", input_ids=ids, use_cache=False)
    assert bended.trace_report().rows[0][1] == "traced"
    plain = model(input_ids=ids, use_cache=False).logits
    out = bended(input_ids=ids, use_cache=False)
    assert type(out).__name__ == "CausalLMOutputWithCrossAttentions" and torch.equal(out.logits, plain)
    assert bended.activation_shape("transformer_h_1_mlp_dropout") == (2, 10, 32)
    with bended.bend(tb.Scale(0.0), "transformer.h.0.mlp.c_fc.weight"):
        assert not torch.allclose(bended(input_ids=ids, use_cache=False).logits, plain)
    with bended.bend(tb.Bias(0.1), "transformer_h_1_attn_c_proj_bias"):  # an op-level node inside attention
        assert not torch.allclose(bended(input_ids=ids, use_cache=False).logits, plain)
    with bended.bend(tb.Mask(0.5, seed=0), "transformer_h_0_ln_2"):
        shorter = torch.randint(0, 100, (3, 10), generator=torch.Generator().manual_seed(2))
        assert bended(input_ids=shorter, use_cache=False).logits.shape == (3, 10, 100)
    assert torch.equal(bended(input_ids=ids, use_cache=False).logits, plain)


def test_diffusers_unet_traces_bends_and_resets():
    model = unet()
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([10, 500])
    bended = tb.BendedModule(model)
    bended.trace("forward", x, t)
    plain = model(x, t).sample
    out = bended(x, t)
    assert type(out).__name__ == "UNet2DOutput" and torch.equal(out.sample, plain)
    with bended.bend(tb.Scale(-1.0), "mid_block.resnets.0.conv1.weight"):
        assert not torch.allclose(bended(x, t).sample, plain)
    with bended.bend(tb.Normal(0.5, seed=0), "down_blocks_1_attentions_0_to_out_0", fn="forward"):
        assert not torch.allclose(bended(x, t).sample, plain)
    # another timestep value takes the same path
    assert torch.equal(bended(x, torch.tensor([3, 7])).sample, model(x, torch.tensor([3, 7])).sample)
    assert torch.equal(bended(x, t).sample, plain)


# --- default arguments trace at op level ---------------------------------------------------------------

from corpus import HF_CASES, hf_gpt2  # noqa: E402


@pytest.mark.parametrize("case", HF_CASES, ids=[c.name for c in HF_CASES])
def test_hf_models_trace_at_op_level_with_default_arguments(case, recwarn):
    model = case.build()
    args, kwargs = case.inputs()
    with torch.no_grad():
        plain = case.run(model)
    bended = tb.BendedModule(model)
    bended.trace(case.method, *args, **kwargs)
    assert not [w for w in recwarn if "torchbend" in str(w.message) or w.filename.startswith(tb.__path__[0])]
    report = bended.trace_report(case.method).rows
    assert report[0][1] == "traced" and not [row for row in report if row[0] == "fallback"]
    record = bended.engine.records[case.method]
    assert any(i.op == "call_function" and i.scope for i in record.activations.values())
    with torch.no_grad():
        out = case.run(bended)
        first = plain[0] if isinstance(plain, tuple) else next(iter(plain.values()))
        assert torch.equal((out[0] if isinstance(out, tuple) else next(iter(out.values()))), first)
        with (
            bended.bend(tb.Scale(case.weight_scale), case.weight),
            bended.bend(tb.Scale(3.0), case.activation, fn=case.method),
        ):
            bent = case.run(bended)
        assert not torch.allclose(bent[0] if isinstance(bent, tuple) else next(iter(bent.values())), first)
        again = case.run(bended)
    assert torch.equal(again[0] if isinstance(again, tuple) else next(iter(again.values())), first)


def test_gpt2_default_forward_returns_a_rebuilt_cache():
    model = hf_gpt2()
    ids = torch.randint(1, 100, (1, 6), generator=torch.Generator().manual_seed(0))
    bended = tb.BendedModule(model)
    bended.trace("forward", input_ids=ids)
    out, plain = bended(input_ids=ids), model(input_ids=ids)
    assert type(out.cache) is type(plain.cache)
    assert out.cache is not plain.cache and torch.equal(out.cache.layers[1].keys, plain.cache.layers[1].keys)
    assert bended(input_ids=ids).cache is not out.cache  # a fresh cache per call


@pytest.mark.parametrize("sample", [False, True], ids=["greedy", "sampling"])
def test_gpt2_generate_bent_on_attention_then_reset(sample, recwarn):
    model = hf_gpt2(init=0.3)
    ids = torch.randint(1, 100, (1, 5), generator=torch.Generator().manual_seed(0))
    kw = dict(max_new_tokens=4, do_sample=sample, pad_token_id=0, eos_token_id=None)

    def generate(target):
        torch.manual_seed(0)
        return target.generate(ids, **kw)

    plain = generate(model)
    bended = tb.BendedModule(model)
    bended.trace("generate", ids, **kw)
    assert bended.trace_report("generate").rows[0][1] == "traced"
    assert torch.equal(generate(bended), plain)
    attention = bended.resolve_activations(r"scaled_dot_product_attention.*@transformer\.h\.0\.attn#0", fn="generate")
    assert len(attention) == 1
    bended.bend(tb.Scale(-5.0), attention[0], fn="generate")
    assert not torch.equal(generate(bended), plain)
    bended.reset()
    assert torch.equal(generate(bended), plain)
    assert not [w for w in recwarn if "copy construct" in str(w.message)]


# --- scoped activation names ---------------------------------------------------------------------------


def test_scoped_patterns_pick_gpt2_layer_1_attention():
    model = hf_gpt2()
    ids = torch.randint(1, 100, (1, 6), generator=torch.Generator().manual_seed(0))
    bended = tb.BendedModule(model)
    bended.trace("forward", input_ids=ids)
    infos = bended.engine.records["forward"].activations
    sdpa = [n for n in infos if n.startswith("scaled_dot_product_attention")]
    assert [infos[n].scope for n in sdpa] == ["transformer.h.0.attn", "transformer.h.1.attn"]
    picked = bended.resolve_activations(r"scaled_dot_product_attention.*@transformer\.h\.1\.attn", fn="forward")
    assert picked == sdpa[1:]
    inside = bended.resolve_activations(r".*@transformer\.h\.1\..*", fn="forward")
    assert sdpa[1] in inside and sdpa[0] not in inside
    assert all(infos[n].scope.startswith("transformer.h.1.") for n in inside)
    assert bended.resolve_activations("transformer_h_0_ln_2", fn="forward") == ["transformer_h_0_ln_2"]  # unchanged
    with pytest.raises(tb.UnknownNameError, match=r"scaled_dot_product_attention_1@transformer\.h\.1\.attn#0"):
        bended.resolve_activations(r"scaled_dot_product_attention@transformer\.h\.1\.attn", fn="forward")
