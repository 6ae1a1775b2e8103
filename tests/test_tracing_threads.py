"""Tracing touches nothing outside its own call: several threads trace at once, others call plain and bent
models meanwhile, and neither torch nor the wrapped model is left changed."""

import threading
import warnings

import torch
from torch import nn

import torchbend as tb
from conftest import assert_unchanged, state_snapshot
from test_engine import run_threads
from torchbend.zoo import load_mnist_vae

TORCH_NAMES = ("zeros", "ones", "randn", "arange", "tensor", "is_tensor")


def torch_state():
    return ({name: getattr(torch, name) for name in TORCH_NAMES}, torch.distributions.Normal,
            nn.Module.__call__, nn.Module.__getattr__, torch.distributions.Distribution.__dict__.get("__new__"))


def test_three_threads_trace_three_models_at_once():
    before = torch_state()
    vaes = [load_mnist_vae() for _ in range(3)]
    snapshots = [state_snapshot(vae) for vae in vaes]
    reports: list[list] = []
    caught: list = []
    start = threading.Barrier(3)

    def trace_many(vae):
        bended = tb.BendedModule(vae)
        z = torch.randn(4, 64)
        start.wait()
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            for _ in range(10):
                bended.trace("decode", z=z)
                reports.append(bended.trace_report("decode").rows)
                assert torch.equal(bended.decode(z), vae.decode(z))
        caught.extend(seen)

    run_threads(*[lambda vae=vae: trace_many(vae) for vae in vaes])
    assert len(reports) == 30
    assert all(rows[0][:2] == ["mode", "traced"] for rows in reports), "a trace fell back to module hooks"
    assert not [str(w.message) for w in caught if "torchbend" in str(w.message)]
    assert torch_state() == before
    for vae, snapshot in zip(vaes, snapshots):
        assert_unchanged(vae, snapshot)


def test_retracing_while_other_threads_call_plain_and_bent():
    vae = load_mnist_vae()
    snapshot = state_snapshot(vae)
    z = torch.randn(4, 64, generator=torch.Generator().manual_seed(0))
    plain = vae.decode(z)
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    bended.bend(tb.Scale(0.5), "decoder_net_convt1", fn="decode")
    bended.bend(tb.Scale(2.0), "decoder.net.convt2.weight")
    bent = bended.decode(z)
    assert not torch.allclose(bent, plain)
    wrong = {"plain": 0, "bent": 0}
    done = threading.Event()

    def retrace():
        try:
            for _ in range(15):
                bended.trace("decode", z=torch.randn(4, 64))
        finally:
            done.set()

    def plain_calls():
        while not done.is_set():
            wrong["plain"] += not torch.equal(vae.decode(z), plain)

    def bent_calls():
        while not done.is_set():
            wrong["bent"] += not torch.equal(bended.decode(z), bent)

    run_threads(retrace, plain_calls, bent_calls)
    assert wrong == {"plain": 0, "bent": 0}
    assert_unchanged(vae, snapshot)


class Streaming(nn.Module):
    """Writes state as it runs: batch-norm statistics in training mode, a cache registered on the first call."""

    def __init__(self):
        super().__init__()
        self.norm = nn.BatchNorm1d(3)
        self.conv = nn.Conv1d(3, 3, 3)

    def forward(self, x):
        if not hasattr(self, "cache"):
            self.register_buffer("cache", torch.zeros(x.shape[0], 3, 2))
        x = self.norm(x)
        joined = torch.cat([self.cache, x], -1)
        self.cache = joined[..., -2:]
        self.calls = getattr(self, "calls", 0) + 1
        return self.conv(joined)


def test_tracing_writes_nothing_on_the_model():
    model = Streaming().train()
    snapshot = state_snapshot(model)
    attributes = set(vars(model))
    buffers = dict(model._buffers)
    bended = tb.BendedModule(model)
    bended.trace("forward", torch.randn(2, 3, 8))
    assert_unchanged(model, snapshot)
    assert set(vars(model)) == attributes and model._buffers == buffers and not hasattr(model, "cache")
    assert bended.trace_report("forward").rows[0][:2] == ["mode", "traced"]


def test_plain_calls_during_a_trace_are_not_recorded():
    """Module calls on another thread while a trace runs neither enter the trace nor see a tracer."""
    vae = load_mnist_vae()
    z = torch.randn(4, 64, generator=torch.Generator().manual_seed(0))
    plain = vae.decode(z)
    inside = threading.Event()
    resume = threading.Event()
    results = []

    class Pausing(nn.Module):
        def forward(self, x):
            inside.set()
            resume.wait(10)
            return x

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.vae, self.pause = vae, Pausing()

        def decode(self, z):
            return self.vae.decode(self.pause(z))

    model = Holder()
    bended = tb.BendedModule(model)

    def trace():
        bended.trace("decode", z=z)

    def call_plain():
        inside.wait(10)
        results.append(torch.equal(vae.decode(z), plain))
        resume.set()

    run_threads(trace, call_plain)
    assert results == [True]
    traced_during_a_call = bended.activation_names(fn="decode")
    resume.set()
    bended.trace("decode", z=z)
    assert bended.activation_names(fn="decode") == traced_during_a_call
