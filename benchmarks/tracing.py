"""Trace time and bent-call cost for every corpus model, in one table.

    python benchmarks/tracing.py [--rounds 15] [--calls 10] [--small-only]

For each model of tests/corpus.py (and its Hugging Face models, GPT-2 at GPT-2-small size among
them, when transformers and diffusers are installed): the median time to trace the method, and
the median call time with one weight and one activation bent, as a ratio to the plain call measured in the same run.
CPU, one thread.
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

import torchbend as tb
from timing import benchmark_args, interleaved_medians

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from corpus import CASES, Case  # noqa: E402


def huggingface_cases(large: bool = True) -> list[Case]:
    try:
        import diffusers
        import transformers
    except ImportError:
        return []
    from corpus import HF_CASES, hf_gpt2

    small_ids = torch.randint(0, 100, (1, 64), generator=torch.Generator().manual_seed(0))
    gpt2_small = Case(
        "HF GPT-2 small size (12 x 768, 1 x 64)",
        lambda: hf_gpt2(layers=12, width=768),
        "forward",
        lambda: ((), {"input_ids": small_ids}),
        "transformer.h.5.mlp.c_fc.weight",
        "scaled_dot_product_attention_5",
    )
    gpt2 = transformers.GPT2Config(
        n_layer=2, n_embd=64, n_head=2, vocab_size=100, n_positions=64, bos_token_id=0, eos_token_id=0
    )
    ids = torch.randint(0, 100, (2, 16), generator=torch.Generator().manual_seed(0))
    unet = dict(
        sample_size=16,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
        attention_head_dim=8,
    )
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    return [
        Case(
            "HF GPT-2 (2 layers)",
            lambda: transformers.GPT2LMHeadModel(gpt2).eval(),
            "forward",
            lambda: ((), {"input_ids": ids, "use_cache": False}),
            "transformer.h.0.mlp.c_fc.weight",
            "transformer_h_1_ln_2",
        ),
        Case(
            "diffusers UNet2DModel",
            lambda: diffusers.UNet2DModel(**unet).eval(),
            "forward",
            lambda: ((x, torch.tensor([10, 500])), {}),
            "mid_block.resnets.0.conv1.weight",
            "conv_in",
        ),
        *HF_CASES,
        *([gpt2_small] if large else []),
    ]


def main() -> None:
    args = benchmark_args(
        __doc__, rounds=15, calls=10, flags={"small-only": "leave out the GPT-2-small-size model (about a minute)"}
    )
    warnings.simplefilter("ignore")
    print(f"CPU, 1 thread; medians of {args.rounds} interleaved rounds x {args.calls} calls")
    print(f"{'model':42s} {'method':9s} {'trace ms':>9s} {'plain us':>10s} {'bent us':>10s} {'ratio':>6s}")
    for case in CASES + huggingface_cases(large=not args.small_only):
        torch.manual_seed(0)
        model = case.build()
        inputs, kw = case.inputs()
        trace_times = []
        for _ in range(3):
            bended = tb.BendedModule(model)
            start = time.perf_counter()
            bended.trace(case.method, *inputs, **kw)
            trace_times.append(time.perf_counter() - start)
        bended.bend(tb.Scale(1.01), case.weight)
        bended.bend(tb.Scale(1.01), case.activation, fn=case.method)
        with torch.no_grad():
            variants = {"plain": lambda c=case, m=model: c.run(m), "bent": lambda c=case, b=bended: c.run(b)}
            medians = interleaved_medians(variants, args.rounds, args.calls)
        print(
            f"{case.name:42s} {case.method:9s} {statistics.median(trace_times) * 1e3:9.1f} "
            f"{medians['plain'] * 1e6:10.1f} {medians['bent'] * 1e6:10.1f} {medians['bent'] / medians['plain']:6.3f}"
        )


if __name__ == "__main__":
    main()
