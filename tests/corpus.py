"""Tiny random-weight versions of the architectures torchbend must trace (no downloads).

Each `Case` names a model, the method to trace with its example inputs, a weight and an
activation to bend, and how to call the method (with a fixed seed where it draws noise).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from conftest import ConvVAE, seeded


class UNet(nn.Module):
    """A two-level U-Net with skip concatenations."""

    def __init__(self, c: int = 4) -> None:
        super().__init__()
        self.down1 = nn.Conv2d(1, c, 3, padding=1)
        self.down2 = nn.Conv2d(c, 2 * c, 3, stride=2, padding=1)
        self.mid = nn.Conv2d(2 * c, 2 * c, 3, padding=1)
        self.up = nn.ConvTranspose2d(2 * c, c, 2, stride=2)
        self.out = nn.Conv2d(2 * c, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = F.relu(self.down1(x))
        h = F.relu(self.mid(F.relu(self.down2(skip))))
        h = self.up(h)
        return self.out(torch.cat([h, skip], dim=1))


class Block(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q, k, v = (y.view(b, t, self.heads, d // self.heads).transpose(1, 2) for y in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool, device=x.device), diagonal=1)
        scores = scores.masked_fill(mask, float("-inf"))
        y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(y)
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    """Token and position embeddings, causal attention blocks in a ModuleList, and `generate`."""

    def __init__(self, vocab: int = 20, d: int = 16, n_layers: int = 2, max_len: int = 32) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(max_len, d)
        self.blocks = nn.ModuleList(Block(d, 2) for _ in range(n_layers))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))

    def generate(self, idx: torch.Tensor, steps: int = 3) -> torch.Tensor:
        for _ in range(steps):
            logits = self(idx)[:, -1]
            idx = torch.cat([idx, logits.argmax(-1, keepdim=True)], dim=1)
        return idx


class GRUModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(3, 6, num_layers=2, batch_first=True)
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)
        return self.head(out)


class CachedConv1d(nn.Module):
    """A causal conv that keeps its last inputs in a buffer between calls (streaming)."""

    def __init__(self, c_in: int, c_out: int, k: int, batch: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, k)
        self.register_buffer("cache", torch.zeros(batch, c_in, k - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = torch.cat([self.cache[: x.shape[0]], x], dim=-1)
        self.cache[: x.shape[0]].copy_(padded[..., -self.cache.shape[-1] :])
        return self.conv(padded)


class RaveLikeDecoder(nn.Module):
    """1-D upsampling decoder with cached padding and noise injection."""

    def __init__(self, latent: int = 4, c: int = 8, batch: int = 2) -> None:
        super().__init__()
        self.pre = CachedConv1d(latent, c, 3, batch)
        self.up = nn.ConvTranspose1d(c, c, 4, stride=2, padding=1)
        self.post = CachedConv1d(c, c, 3, batch)
        self.noise_gain = nn.Parameter(torch.tensor(0.1))
        self.out = nn.Conv1d(c, 1, 1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.pre(z), 0.2)
        h = F.leaky_relu(self.up(h), 0.2)
        h = self.post(h)
        h = h + self.noise_gain * torch.randn_like(h)
        return torch.tanh(self.out(h))


class ModulatedConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, w_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, 3, 3))
        self.affine = nn.Linear(w_dim, c_in)
        self.noise_strength = nn.Parameter(torch.tensor(0.1))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        b, c, h, wd = x.shape
        style = self.affine(w).view(b, 1, c, 1, 1)
        weight = self.weight.unsqueeze(0) * style
        weight = weight * (weight.pow(2).sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
        out = F.conv2d(x.reshape(1, b * c, h, wd), weight.reshape(-1, c, 3, 3), padding=1, groups=b)
        out = out.view(b, -1, h, wd)
        return F.leaky_relu(out + self.noise_strength * torch.randn(b, 1, h, wd, device=x.device), 0.2)


class StyleGANLike(nn.Module):
    """Mapping network, a learned constant, modulated convolutions with per-layer noise."""

    def __init__(self, z_dim: int = 8, w_dim: int = 8, c: int = 8) -> None:
        super().__init__()
        self.mapping = nn.Sequential(nn.Linear(z_dim, w_dim), nn.LeakyReLU(0.2), nn.Linear(w_dim, w_dim))
        self.const = nn.Parameter(torch.randn(1, c, 4, 4))
        self.conv0 = ModulatedConv(c, c, w_dim)
        self.conv1 = ModulatedConv(c, c, w_dim)
        self.to_rgb = nn.Conv2d(c, 3, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        w = self.mapping(F.normalize(z, dim=1))
        x = self.const.expand(z.shape[0], -1, -1, -1)
        x = self.conv0(x, w)
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = self.conv1(x, w)
        return torch.tanh(self.to_rgb(x))


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class DiffusionUNet(nn.Module):
    """A small denoiser with a sinusoidal timestep embedding, used inside a sampling loop."""

    def __init__(self, c: int = 8, t_dim: int = 16) -> None:
        super().__init__()
        self.t_dim = t_dim
        self.t_mlp = nn.Sequential(nn.Linear(t_dim, c), nn.SiLU(), nn.Linear(c, c))
        self.inp = nn.Conv2d(1, c, 3, padding=1)
        self.down = nn.Conv2d(c, c, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(c, c, 2, stride=2)
        self.out = nn.Conv2d(2 * c, 1, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.t_mlp(timestep_embedding(t, self.t_dim))[:, :, None, None]
        h = F.silu(self.inp(x) + emb)
        d = F.silu(self.down(h))
        return self.out(torch.cat([self.up(d), h], dim=1))


def sample(denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], steps: int = 4) -> torch.Tensor:
    """A deterministic DDIM-like loop calling `denoise(x, t)` at every step."""
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for i in reversed(range(steps)):
        t = torch.full((2,), i * 10, dtype=torch.long)
        x = x - 0.1 * denoise(x, t)
    return x


class TransformerModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.transformer = nn.Transformer(
            d_model=16,
            nhead=2,
            num_encoder_layers=1,
            num_decoder_layers=1,
            dim_feedforward=32,
            dropout=0.0,
            batch_first=True,
        )

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        return self.transformer(src, tgt)


@dataclass
class Case:
    """A corpus model: how to build it, trace it, call it, and what to bend."""

    name: str
    build: Callable[[], nn.Module]
    method: str
    inputs: Callable[[], tuple[tuple, dict]]
    weight: str
    activation: str
    call: Callable[[Any, tuple, dict], Any] | None = None  # default: method(*args, **kwargs)
    weight_scale: float = 1.5  # how much the bent weight is scaled

    def run(self, target: Any) -> Any:
        """Call the method on `target` (a module or a BendedModule), reseeding random draws first."""
        args, kwargs = self.inputs()
        torch.manual_seed(0)
        if self.call is not None:
            return self.call(target, args, kwargs)
        return getattr(target, self.method)(*args, **kwargs)


def _randn(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _reset_caches(module: nn.Module) -> None:
    for name, buffer in module.named_buffers():
        if name.endswith("cache"):
            buffer.zero_()


def _decode_fresh(target: Any, args: tuple, kwargs: dict) -> torch.Tensor:
    model = target.module if hasattr(target, "bended_state_dict") else target
    _reset_caches(model)
    return target.decode(*args, **kwargs)


CASES = [
    Case(
        "conv VAE",
        lambda: seeded(ConvVAE()),
        "decode",
        lambda: ((_randn(4, 8),), {}),
        "decoder.net.convt0.weight",
        "decoder_net_relu0",
    ),
    Case("U-Net", lambda: seeded(UNet()), "forward", lambda: ((_randn(2, 1, 8, 8),), {}), "mid.weight", "cat"),
    Case(
        "GPT-like",
        lambda: seeded(TinyGPT()),
        "forward",
        lambda: ((torch.randint(0, 20, (2, 6), generator=torch.Generator().manual_seed(1)),), {}),
        "blocks.1.qkv.weight",
        "blocks_0_mlp_1",
    ),
    Case(
        "GPT-like generate",
        lambda: seeded(TinyGPT()),
        "generate",
        lambda: ((torch.randint(0, 20, (2, 4), generator=torch.Generator().manual_seed(1)),), {"steps": 3}),
        "head.weight",
        "ln_1",
        weight_scale=-1.0,
    ),  # argmax is blind to a positive scale
    Case("GRU", lambda: seeded(GRUModel()), "forward", lambda: ((_randn(2, 5, 3),), {}), "gru.weight_hh_l1", "getitem"),
    Case(
        "RAVE-like decoder",
        lambda: seeded(RaveLikeDecoder()),
        "decode",
        lambda: ((_randn(2, 4, 6),), {}),
        "up.weight",
        "up",
        call=_decode_fresh,
    ),
    Case(
        "StyleGAN-like",
        lambda: seeded(StyleGANLike()),
        "forward",
        lambda: ((_randn(2, 8),), {}),
        "conv0.affine.weight",
        "interpolate",
    ),  # demodulation cancels a scale of conv weights
    Case(
        "diffusion U-Net in a sampling loop",
        lambda: seeded(DiffusionUNet()),
        "forward",
        lambda: ((_randn(2, 1, 8, 8), torch.tensor([5, 5])), {}),
        "down.weight",
        "t_mlp_2",
        call=lambda target, args, kwargs: sample(target),
    ),
    Case(
        "torch.nn.Transformer",
        lambda: seeded(TransformerModel()),
        "forward",
        lambda: ((_randn(2, 5, 16), _randn(2, 4, 16, seed=2)), {}),
        "transformer.decoder.layers.0.linear1.weight",
        "transformer_encoder_layers_0_norm1",
    ),
]


class DiffusionSampler(nn.Module):
    """The sampling loop inside the traced method: the denoiser is called once per step."""

    def __init__(self, steps: int = 3) -> None:
        super().__init__()
        self.steps = steps
        self.unet = DiffusionUNet()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in reversed(range(self.steps)):
            t = torch.full((x.shape[0],), i * 10, dtype=torch.long)
            x = x - 0.1 * self.unet(x, t)
        return x


# --- Hugging Face models: tiny configs, random weights (need transformers / diffusers) -----------------


def hf_gpt2(layers: int = 2, width: int = 32, init: float = 0.02) -> nn.Module:
    import transformers

    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_layer=layers,
        n_embd=width,
        n_head=2,
        vocab_size=100,
        n_positions=128,
        bos_token_id=0,
        eos_token_id=0,
        initializer_range=init,
    )
    return transformers.GPT2LMHeadModel(config).eval()


def hf_llama() -> nn.Module:
    import transformers

    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        num_hidden_layers=2,
        hidden_size=32,
        intermediate_size=64,
        num_attention_heads=2,
        num_key_value_heads=1,
        vocab_size=100,
        max_position_embeddings=64,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )
    return transformers.LlamaForCausalLM(config).eval()


def hf_bert() -> nn.Module:
    import transformers

    torch.manual_seed(0)
    config = transformers.BertConfig(
        num_hidden_layers=2,
        hidden_size=32,
        intermediate_size=64,
        num_attention_heads=2,
        vocab_size=100,
        max_position_embeddings=64,
    )
    return transformers.BertModel(config).eval()


def hf_t5() -> nn.Module:
    import transformers

    torch.manual_seed(0)
    config = transformers.T5Config(
        num_layers=2,
        num_decoder_layers=2,
        d_model=32,
        d_ff=64,
        d_kv=16,
        num_heads=2,
        vocab_size=100,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    return transformers.T5ForConditionalGeneration(config).eval()


def diffusers_unet_cond() -> nn.Module:
    import diffusers

    torch.manual_seed(0)
    return diffusers.UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(8,),
        down_block_types=("CrossAttnDownBlock2D",),
        up_block_types=("CrossAttnUpBlock2D",),
        cross_attention_dim=16,
        attention_head_dim=4,
        norm_num_groups=4,
    ).eval()


def diffusers_vae() -> nn.Module:
    import diffusers

    torch.manual_seed(0)
    return diffusers.AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=4,
        sample_size=16,
    ).eval()


def _ids(batch: int = 2, length: int = 8, seed: int = 1) -> torch.Tensor:
    return torch.randint(1, 100, (batch, length), generator=torch.Generator().manual_seed(seed))


HF_CASES = [
    Case(
        "HF GPT2LMHeadModel",
        hf_gpt2,
        "forward",
        lambda: ((), {"input_ids": _ids()}),
        "transformer.h.0.mlp.c_fc.weight",
        "scaled_dot_product_attention_1",
    ),
    Case(
        "HF LlamaForCausalLM",
        hf_llama,
        "forward",
        lambda: ((), {"input_ids": _ids()}),
        "model.layers.0.mlp.up_proj.weight",
        "scaled_dot_product_attention_1",
    ),
    Case(
        "HF BertModel",
        hf_bert,
        "forward",
        lambda: ((), {"input_ids": _ids()}),
        "encoder.layer.0.intermediate.dense.weight",
        "scaled_dot_product_attention_1",
    ),
    Case(
        "HF T5ForConditionalGeneration",
        hf_t5,
        "forward",
        lambda: ((), {"input_ids": _ids(), "decoder_input_ids": _ids(length=4, seed=2)}),
        "encoder.block.0.layer.1.DenseReluDense.wi.weight",
        "scaled_dot_product_attention_3",
    ),
    Case(
        "diffusers UNet2DConditionModel",
        diffusers_unet_cond,
        "forward",
        lambda: ((_randn(2, 4, 8, 8), torch.tensor([10, 500]), _randn(2, 3, 16, seed=2)), {}),
        "mid_block.resnets.0.conv1.weight",
        "conv_in",
    ),
    Case(
        "diffusers AutoencoderKL decode",
        diffusers_vae,
        "decode",
        lambda: ((_randn(2, 4, 4, 4),), {}),
        "decoder.conv_in.weight",
        "decoder_conv_in",
    ),
]
