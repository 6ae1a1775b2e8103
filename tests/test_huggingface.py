"""Models from the libraries users load from: Hugging Face transformers and diffusers (small configs, no download)."""

import pytest
import torch

import torchbend as tb

transformers = pytest.importorskip("transformers")
diffusers = pytest.importorskip("diffusers")


def gpt2():
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=64,
                                     bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(config).eval()


def unet():
    torch.manual_seed(0)
    return diffusers.UNet2DModel(sample_size=16, in_channels=3, out_channels=3, layers_per_block=1,
                                 block_out_channels=(8, 16), down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                                 up_block_types=("AttnUpBlock2D", "UpBlock2D"), norm_num_groups=4,
                                 attention_head_dim=8).eval()


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
