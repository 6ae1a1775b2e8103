"""Property: any sequence of bend / call / update / remove / reset leaves the model bit-identical."""

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import torchbend as tb
from conftest import ConvVAE, assert_unchanged, seeded, state_snapshot

MODEL = seeded(ConvVAE())
Z = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
X = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(1))
PLAIN = {"decode": MODEL.decode(Z), "forward": MODEL(X), "encode": MODEL.encode(X)[0]}
TARGETS = [
    "decoder.fc.weight",
    "decoder.net.convt0.weight",
    "decoder.net.bn0.bias",
    "encoder.0.weight",
    "decoder_net_convt0",
    "decoder_net_relu0",
    "decoder.net.convt.*",
    "decode:view",
    "z",
    "x",
]
CALLBACKS = ["scale", "bias", "mask", "normal", "lambda_inplace", "permute", "chain"]

operation = st.one_of(
    st.tuples(st.just("bend"), st.sampled_from(CALLBACKS), st.sampled_from(TARGETS)),
    st.tuples(st.just("call"), st.sampled_from(sorted(PLAIN))),
    st.tuples(st.just("update"), st.floats(0.0, 1.0, allow_nan=False)),
    st.tuples(st.just("remove"), st.integers(0, 5)),
    st.tuples(
        st.just("reset"),
    ),
)


def make_callback(kind, param):
    return {
        "scale": lambda: tb.Scale(2 * param),
        "bias": lambda: tb.Bias(param),
        "mask": lambda: tb.Mask(prob=param),
        "normal": lambda: tb.Normal(std=param, seed=3),
        "lambda_inplace": lambda: tb.Lambda(lambda t: t.mul_(-1)),
        "permute": lambda: tb.Permute(dim=0, seed=1),
        "chain": lambda: tb.Scale(param) >> tb.Mask(0.5, seed=2),
    }[kind]()


def call(bended, method):
    if method == "decode":
        return bended.decode(Z)
    if method == "encode":
        return bended.encode(X)[0]
    return bended(X)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=1, max_size=12))
def test_any_sequence_leaves_the_model_untouched_and_reset_restores(ops):
    snapshot = state_snapshot(MODEL)
    bended = tb.BendedModule(MODEL)
    bended.trace("decode", z=Z)
    bended.trace("forward", X)
    param = tb.BendingParameter("p", 0.5, range=(0.0, 1.0))
    handles = []
    for op in ops:
        if op[0] == "bend":
            try:
                handles.append(bended.bend(make_callback(op[1], param), op[2]))
            except (tb.BendingError, ValueError):
                pass  # e.g. Permute on an axis the target lacks
        elif op[0] == "call":
            try:
                call(bended, op[1])
            except ValueError:
                pass  # a Permute drawn for one size meeting another
        elif op[0] == "update":
            param.value = op[1]
        elif op[0] == "remove" and handles:
            handles[op[1] % len(handles)].remove()
        elif op[0] == "reset":
            bended.reset()
        assert_unchanged(MODEL, snapshot)
    bended.reset()
    for method, expected in PLAIN.items():
        assert torch.equal(call(bended, method), expected)
    assert_unchanged(MODEL, snapshot)
