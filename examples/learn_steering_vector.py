"""Learn a steering vector: an offset of a tiny GPT-2's residual stream that makes it say chosen tokens.

    python examples/learn_steering_vector.py [--steps 60]

The model is a 2-layer GPT-2 with random weights, built offline from a `transformers.GPT2Config`, and its
"words" are token ids. A `tb.Trainable` vector of the stream's width is added (`tb.Bias`) to the residual
stream after block 0, at every position; `tb.optimize` raises the probability that the next token is one of
`CHOSEN`, with `tb.norm_bound` keeping the vector short. Greedy generations are printed before and after, and
at half strength (the vector's `strength` is a live parameter, as a slider would set it).
"""

import argparse

import torch

import torchbend as tb

CHOSEN = [7, 42]
WINDOW = 8


def tiny_gpt2() -> torch.nn.Module:
    import transformers

    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=64, bos_token_id=0, eos_token_id=0
    )
    return transformers.GPT2LMHeadModel(config).eval()


def generate(bended: tb.BendedModule, prompts: torch.Tensor, n: int) -> torch.Tensor:
    """Greedy continuation, `n` tokens, reading the last `WINDOW` tokens each time (one traced shape)."""
    ids = prompts
    with torch.no_grad():
        for _ in range(n):
            logits = bended(input_ids=ids[:, -WINDOW:], use_cache=False).logits
            ids = torch.cat([ids, logits[:, -1:].argmax(-1)], dim=1)
    return ids[:, prompts.shape[1] :]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    model = tiny_gpt2()
    prompts = torch.randint(1, 100, (4, WINDOW), generator=torch.Generator().manual_seed(1))
    bended = tb.BendedModule(model)
    bended.trace("forward", input_ids=prompts, use_cache=False)
    stream = bended.resolve_activations(r"add.*@transformer\.h\.0#0", fn="forward")[-1]  # block 0's output

    def log_p_chosen(logits: torch.Tensor) -> torch.Tensor:  # log p(next token in CHOSEN), at every position
        return logits.log_softmax(-1)[..., CHOSEN].logsumexp(-1)

    def chosen_probability(logits: torch.Tensor) -> torch.Tensor:
        return log_p_chosen(logits).exp().mean()

    def loss(out) -> torch.Tensor:
        return -log_p_chosen(out.logits).mean()

    before = generate(bended, prompts, 12)
    with torch.no_grad():
        p_before = chosen_probability(bended(input_ids=prompts, use_cache=False).logits)
    strength = tb.BendingParameter("steer_strength", 1.0, range=(0.0, 4.0))
    steer = tb.Trainable(0.0, shape=(32,), name="steer", strength=strength)
    bended.bend(tb.Bias(steer), stream, fn="forward")
    run = tb.optimize(
        bended,
        "forward",
        {"input_ids": prompts, "use_cache": False},
        loss,
        steps=args.steps,
        lr=0.1,
        regularizers=[tb.norm_bound(8.0)],
        progress=False,
    )
    after = generate(bended, prompts, 12)
    with torch.no_grad():
        p_after = chosen_probability(bended(input_ids=prompts, use_cache=False).logits)
    bended.update("steer_strength", 0.5)
    half = generate(bended, prompts, 12)
    print(
        f"steering {stream} with a vector of norm {steer.value.norm():.2f}; loss {run.history[0]:.3f} -> "
        f"{run.best_loss:.3f}"
    )
    print(f"p(next token in {CHOSEN}): {p_before:.3f} before, {p_after:.3f} after")
    for name, tokens in (("before", before), ("after", after), ("half strength", half)):
        share = torch.isin(tokens, torch.tensor(CHOSEN)).float().mean()
        print(f"{name:14s} {share:5.0%} chosen  " + " | ".join(" ".join(map(str, row.tolist())) for row in tokens[:2]))


if __name__ == "__main__":
    main()
