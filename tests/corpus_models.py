"""Models from the wild: real Hugging Face transformers and diffusers architectures, tiny configs, random weights.

Shared by tests/test_corpus.py and benchmarks/corpus.py, so the two always run the same models:

    >>> from corpus_models import WILD, outputs
    >>> case = next(c for c in WILD if c.name == "GPT2LMHeadModel")
    >>> model = case.build(); args, kwargs = case.inputs()
    >>> outputs(model(*args, **kwargs))[0].shape
    torch.Size([2, 8, 64])

Each `Wild` case builds its model (seeded, eval mode, hidden sizes 8-32, one or two layers) and gives the
example inputs of the traced method. What each test does with it (trace, bend a mid-graph activation, reset,
script, torch.export) is in `mid_activation` and the test; which exports are expected to fail, and why, is
`Wild.script` / `Wild.export` (None: it exports), and docs/corpus.md lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

VOCAB = 64


@dataclass
class Wild:
    """One architecture: how to build it and call `method`; why `script()` / `export()` cannot take it (None:
    they can)."""

    name: str
    build: Callable[[], nn.Module]
    inputs: Callable[[], tuple[tuple, dict]]
    method: str = "forward"
    script: str | None = None
    export: str | None = None

    def run(self, target: Any) -> list[torch.Tensor]:
        """The output tensors of the method called on `target` (a model or a BendedModule)."""
        args, kwargs = self.inputs()
        torch.manual_seed(0)
        with torch.no_grad():
            return outputs(getattr(target, self.method)(*args, **kwargs))


def outputs(value: Any) -> list[torch.Tensor]:
    """The floating-point tensors in a model output (a tensor, a tuple, a dataclass or dict of outputs), in order."""
    if isinstance(value, torch.Tensor):
        return [value] if value.is_floating_point() else []
    if isinstance(value, dict) or hasattr(value, "to_tuple"):
        value = list(value.values())
    elif hasattr(value, "__dataclass_fields__"):
        value = [getattr(value, f) for f in value.__dataclass_fields__]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in outputs(v)]
    return []


def mid_activation(bended: Any, case: Wild, plain: list[torch.Tensor]) -> str:
    """The floating-point activation nearest the middle of the traced graph whose bend by `tb.Bias(0.5)` changes
    the output (values before a normalisation, a softmax or an argmin ignore a constant shift)."""
    import torchbend as tb

    record = bended.engine.record(case.method)
    names = [
        n
        for n, a in record.activations.items()
        if a.op in ("call_module", "call_function", "call_method")
        and a.dtype is not None
        and a.dtype.is_floating_point
        and a.shape is not None
        and len(a.shape) >= 2
    ]
    middle = len(names) // 2
    order = sorted(names, key=lambda n: abs(names.index(n) - middle))
    for name in order[:: max(1, len(order) // 12)]:  # from the middle outwards, a dozen tries across the graph
        with bended.bend(tb.Bias(0.5), name, fn=case.method):
            bent = case.run(bended)
        if any(not torch.allclose(b, p, atol=1e-4) for b, p in zip(bent, plain)):
            return name
    raise AssertionError(f"{case.name}: no activation near the middle of the graph changes the output when bent")


def _g(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ids(batch: int = 2, length: int = 8, seed: int = 1) -> torch.Tensor:
    return torch.randint(3, VOCAB, (batch, length), generator=_g(seed))


def randn(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=_g(seed))


def _seeded(make: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        torch.manual_seed(0)
        return make().eval()

    return build


def _hf(cls_name: str, config_name: str, **config: Any) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        import transformers

        return getattr(transformers, cls_name)(getattr(transformers, config_name)(**config))

    return _seeded(make)


def _diffusers(cls_name: str, **config: Any) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        import diffusers

        return getattr(diffusers, cls_name)(**config)

    return _seeded(make)


LM = dict(
    vocab_size=VOCAB,
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=32,
    max_position_embeddings=64,
    bos_token_id=0,
    eos_token_id=1,
    pad_token_id=2,
)
DECODER = dict(LM, num_key_value_heads=1)
ENCODER = dict(
    vocab_size=VOCAB,
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=32,
    max_position_embeddings=64,
    pad_token_id=0,
)


def TOKENS() -> tuple[tuple, dict]:  # noqa: N802 (an input maker, named like the configs beside it)
    return (ids(),), {}


VISION = dict(
    image_size=16,
    patch_size=4,
    num_channels=3,
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=32,
)


def PIXELS() -> tuple[tuple, dict]:  # noqa: N802
    return (randn(2, 3, 16, 16),), {}


def CONVNET() -> tuple[tuple, dict]:  # noqa: N802
    return (randn(2, 3, 32, 32),), {}


SPEECH = dict(
    vocab_size=VOCAB,
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=32,
    conv_dim=(8, 8),
    conv_stride=(4, 4),
    conv_kernel=(8, 4),
    num_conv_pos_embeddings=8,
    num_conv_pos_embedding_groups=2,
    do_stable_layer_norm=True,
    feat_extract_norm="layer",
)


def WAVE() -> tuple[tuple, dict]:  # noqa: N802
    return (randn(2, 400),), {}


BLOCKS_2D = dict(block_out_channels=(8, 16), norm_num_groups=4)

WILD: list[Wild] = [
    # --- language models ----------------------------------------------------------------------------------
    Wild(
        "GPT2LMHeadModel",
        _hf(
            "GPT2LMHeadModel",
            "GPT2Config",
            vocab_size=VOCAB,
            n_embd=16,
            n_layer=2,
            n_head=2,
            n_positions=64,
            bos_token_id=0,
            eos_token_id=1,
        ),
        TOKENS,
    ),
    Wild("GPTNeoXForCausalLM", _hf("GPTNeoXForCausalLM", "GPTNeoXConfig", **LM), TOKENS),
    Wild("LlamaForCausalLM", _hf("LlamaForCausalLM", "LlamaConfig", **DECODER), TOKENS),
    Wild("MistralForCausalLM", _hf("MistralForCausalLM", "MistralConfig", **DECODER), TOKENS),
    Wild("Qwen2ForCausalLM", _hf("Qwen2ForCausalLM", "Qwen2Config", **DECODER), TOKENS),
    Wild("GemmaForCausalLM", _hf("GemmaForCausalLM", "GemmaConfig", **DECODER, head_dim=8), TOKENS),
    Wild("PhiForCausalLM", _hf("PhiForCausalLM", "PhiConfig", **LM), TOKENS),
    Wild(
        "OPTForCausalLM",
        _hf(
            "OPTForCausalLM",
            "OPTConfig",
            vocab_size=VOCAB,
            hidden_size=16,
            num_hidden_layers=2,
            ffn_dim=32,
            num_attention_heads=2,
            max_position_embeddings=64,
            word_embed_proj_dim=16,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=2,
        ),
        TOKENS,
    ),
    Wild(
        "BloomForCausalLM",
        _hf(
            "BloomForCausalLM",
            "BloomConfig",
            vocab_size=VOCAB,
            hidden_size=16,
            n_layer=2,
            n_head=2,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=2,
        ),
        TOKENS,
    ),
    Wild(
        "FalconForCausalLM",
        _hf(
            "FalconForCausalLM",
            "FalconConfig",
            vocab_size=VOCAB,
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            bos_token_id=0,
            eos_token_id=1,
        ),
        TOKENS,
    ),
    Wild(
        "MambaForCausalLM",
        _hf(
            "MambaForCausalLM",
            "MambaConfig",
            vocab_size=VOCAB,
            hidden_size=16,
            num_hidden_layers=2,
            state_size=4,
            expand=2,
            conv_kernel=4,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=2,
        ),
        TOKENS,
    ),
    Wild(
        "MixtralForCausalLM (mixture of experts)",
        _hf("MixtralForCausalLM", "MixtralConfig", **DECODER, num_local_experts=4, num_experts_per_tok=2),
        TOKENS,
    ),
    Wild(
        "Qwen2MoeForCausalLM (mixture of experts)",
        _hf(
            "Qwen2MoeForCausalLM",
            "Qwen2MoeConfig",
            **DECODER,
            num_experts=4,
            num_experts_per_tok=2,
            moe_intermediate_size=16,
            shared_expert_intermediate_size=16,
        ),
        TOKENS,
    ),
    # --- encoders and sequence-to-sequence -------------------------------------------------------------------
    Wild("BertModel", _hf("BertModel", "BertConfig", **ENCODER), TOKENS),
    Wild("RobertaModel", _hf("RobertaModel", "RobertaConfig", **dict(ENCODER, pad_token_id=1)), TOKENS),
    Wild(
        "DistilBertModel",
        _hf(
            "DistilBertModel",
            "DistilBertConfig",
            vocab_size=VOCAB,
            dim=16,
            n_layers=2,
            n_heads=2,
            hidden_dim=32,
            max_position_embeddings=64,
        ),
        TOKENS,
    ),
    Wild("AlbertModel", _hf("AlbertModel", "AlbertConfig", **ENCODER, embedding_size=8), TOKENS),
    Wild("ElectraModel", _hf("ElectraModel", "ElectraConfig", **ENCODER, embedding_size=8), TOKENS),
    Wild("DebertaV2Model", _hf("DebertaV2Model", "DebertaV2Config", **ENCODER), TOKENS),
    Wild(
        "T5ForConditionalGeneration",
        _hf(
            "T5ForConditionalGeneration",
            "T5Config",
            vocab_size=VOCAB,
            d_model=16,
            d_kv=8,
            d_ff=32,
            num_layers=2,
            num_heads=2,
            decoder_start_token_id=0,
            pad_token_id=0,
            eos_token_id=1,
        ),
        lambda: ((ids(),), {"decoder_input_ids": ids(length=4, seed=2)}),
    ),
    Wild(
        "BartForConditionalGeneration",
        _hf(
            "BartForConditionalGeneration",
            "BartConfig",
            vocab_size=VOCAB,
            d_model=16,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            max_position_embeddings=64,
        ),
        lambda: ((ids(),), {"decoder_input_ids": ids(length=4, seed=2)}),
    ),
    # --- vision ------------------------------------------------------------------------------------------------
    Wild("ViTModel", _hf("ViTModel", "ViTConfig", **VISION), PIXELS),
    Wild("DeiTModel", _hf("DeiTModel", "DeiTConfig", **VISION), PIXELS),
    Wild(
        "SwinModel",
        _hf(
            "SwinModel",
            "SwinConfig",
            image_size=16,
            patch_size=2,
            embed_dim=8,
            depths=(1, 1),
            num_heads=(1, 2),
            window_size=4,
        ),
        PIXELS,
    ),
    Wild("CLIPVisionModel", _hf("CLIPVisionModel", "CLIPVisionConfig", **VISION), PIXELS),
    Wild(
        "ResNetModel",
        _hf("ResNetModel", "ResNetConfig", embedding_size=8, hidden_sizes=(8, 16), depths=(1, 1)),
        CONVNET,
    ),
    Wild(
        "ConvNextModel",
        _hf("ConvNextModel", "ConvNextConfig", hidden_sizes=(8, 16), depths=(1, 1), num_stages=2),
        CONVNET,
    ),
    Wild(
        "RegNetModel",
        _hf("RegNetModel", "RegNetConfig", embedding_size=8, hidden_sizes=(8, 16), depths=(1, 1), groups_width=4),
        CONVNET,
    ),
    Wild(
        "SegformerModel",
        _hf(
            "SegformerModel",
            "SegformerConfig",
            num_encoder_blocks=2,
            depths=(1, 1),
            sr_ratios=(2, 1),
            hidden_sizes=(8, 16),
            num_attention_heads=(1, 2),
            patch_sizes=(7, 3),
            strides=(4, 2),
            mlp_ratios=(2, 2),
        ),
        CONVNET,
    ),
    # --- audio -------------------------------------------------------------------------------------------------
    Wild("Wav2Vec2Model", _hf("Wav2Vec2Model", "Wav2Vec2Config", **SPEECH), WAVE),
    Wild("HubertModel", _hf("HubertModel", "HubertConfig", **SPEECH), WAVE),
    Wild(
        "WhisperModel",
        _hf(
            "WhisperModel",
            "WhisperConfig",
            vocab_size=VOCAB,
            num_mel_bins=8,
            d_model=16,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            max_source_positions=8,
            max_target_positions=16,
            decoder_start_token_id=0,
            pad_token_id=2,
            bos_token_id=0,
            eos_token_id=1,
        ),
        lambda: ((randn(2, 8, 16),), {"decoder_input_ids": ids(length=4, seed=2)}),
    ),
    Wild(
        "EncodecModel",
        _hf(
            "EncodecModel",
            "EncodecConfig",
            num_filters=4,
            hidden_size=16,
            codebook_size=16,
            codebook_dim=16,
            upsampling_ratios=(4, 2),
            num_lstm_layers=1,
            sampling_rate=8000,
            target_bandwidths=(8.0,),
        ),
        lambda: ((randn(2, 1, 256),), {}),
    ),
    Wild(
        "DacModel",
        _hf(
            "DacModel",
            "DacConfig",
            encoder_hidden_size=4,
            downsampling_ratios=(2, 4),
            decoder_hidden_size=16,
            n_codebooks=2,
            codebook_size=16,
            codebook_dim=4,
            hidden_size=32,
        ),
        lambda: ((randn(2, 1, 256),), {}),
    ),
    # --- diffusers -----------------------------------------------------------------------------------------------
    Wild(
        "UNet1DModel",
        _diffusers(
            "UNet1DModel",
            block_out_channels=(8, 16),
            in_channels=2,
            out_channels=2,
            time_embedding_type="positional",
            use_timestep_embedding=True,
            flip_sin_to_cos=False,
            freq_shift=1.0,
            out_block_type="OutConv1DBlock",
            mid_block_type="MidResTemporalBlock1D",
            down_block_types=("DownResnetBlock1D",) * 2,
            up_block_types=("UpResnetBlock1D",),
            act_fn="swish",
            layers_per_block=1,
            norm_num_groups=4,
        ),
        lambda: ((randn(2, 2, 16), torch.tensor([10, 500])), {}),
    ),
    Wild(
        "UNet2DModel",
        _diffusers(
            "UNet2DModel",
            sample_size=16,
            in_channels=3,
            out_channels=3,
            layers_per_block=1,
            down_block_types=("DownBlock2D", "AttnDownBlock2D"),
            up_block_types=("AttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=8,
            **BLOCKS_2D,
        ),
        lambda: ((randn(2, 3, 16, 16), torch.tensor([10, 500])), {}),
    ),
    Wild(
        "UNet2DConditionModel",
        _diffusers(
            "UNet2DConditionModel",
            sample_size=8,
            in_channels=4,
            out_channels=4,
            layers_per_block=1,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=16,
            attention_head_dim=4,
            **BLOCKS_2D,
        ),
        lambda: ((randn(2, 4, 8, 8), torch.tensor([10, 500]), randn(2, 3, 16, seed=2)), {}),
    ),
    Wild(
        "AutoencoderKL",
        _diffusers(
            "AutoencoderKL",
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            down_block_types=("DownEncoderBlock2D",) * 2,
            up_block_types=("UpDecoderBlock2D",) * 2,
            sample_size=16,
            **BLOCKS_2D,
        ),
        lambda: ((randn(2, 3, 16, 16),), {}),
    ),
    Wild(
        "AutoencoderKL decode",
        _diffusers(
            "AutoencoderKL",
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            down_block_types=("DownEncoderBlock2D",) * 2,
            up_block_types=("UpDecoderBlock2D",) * 2,
            sample_size=16,
            **BLOCKS_2D,
        ),
        lambda: ((randn(2, 4, 8, 8),), {}),
        method="decode",
    ),
    Wild(
        "AutoencoderOobleck",
        _diffusers(
            "AutoencoderOobleck",
            encoder_hidden_size=8,
            downsampling_ratios=[2, 4],
            decoder_channels=4,
            decoder_input_channels=4,
            audio_channels=2,
            channel_multiples=[1, 2],
        ),
        lambda: ((randn(2, 2, 256),), {}),
    ),
    Wild(
        "AutoencoderTiny",
        _diffusers(
            "AutoencoderTiny",
            encoder_block_out_channels=(8, 8),
            num_encoder_blocks=(1, 1),
            decoder_block_out_channels=(8, 8),
            num_decoder_blocks=(1, 1),
            latent_channels=4,
        ),
        lambda: ((randn(2, 3, 16, 16),), {}),
    ),
    Wild(
        "DiTTransformer2DModel",
        _diffusers(
            "DiTTransformer2DModel",
            num_attention_heads=2,
            attention_head_dim=8,
            in_channels=4,
            num_layers=1,
            sample_size=8,
            patch_size=2,
            num_embeds_ada_norm=10,
            norm_num_groups=4,
        ),
        lambda: ((randn(2, 4, 8, 8), torch.tensor([3, 7]), torch.tensor([1, 2])), {}),
    ),
    Wild(
        "SD3Transformer2DModel",
        _diffusers(
            "SD3Transformer2DModel",
            sample_size=8,
            patch_size=2,
            in_channels=4,
            num_layers=1,
            attention_head_dim=8,
            num_attention_heads=2,
            joint_attention_dim=16,
            caption_projection_dim=16,
            pooled_projection_dim=8,
            out_channels=4,
            pos_embed_max_size=8,
        ),
        lambda: ((randn(2, 4, 8, 8), randn(2, 3, 16, seed=2), randn(2, 8, seed=3), torch.tensor([3, 7])), {}),
    ),
    Wild(
        "FluxTransformer2DModel",
        _diffusers(
            "FluxTransformer2DModel",
            patch_size=1,
            in_channels=8,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=8,
            num_attention_heads=2,
            joint_attention_dim=16,
            pooled_projection_dim=8,
            axes_dims_rope=(2, 2, 4),
        ),
        lambda: (
            (randn(2, 16, 8),),
            {
                "encoder_hidden_states": randn(2, 3, 16, seed=2),
                "pooled_projections": randn(2, 8, seed=3),
                "timestep": torch.tensor([0.3, 0.7]),
                "img_ids": torch.zeros(16, 3),
                "txt_ids": torch.zeros(3, 3),
            },
        ),
    ),
]
