"""Tracing touches nothing outside its own call: several threads trace at once, others call plain and bent
models meanwhile, and neither torch nor the wrapped model is left changed."""

import threading
import warnings

import pytest
import torch
from torch import nn

import torchbend as tb
from conftest import assert_unchanged, state_snapshot
from test_engine import run_threads
from torchbend.zoo import load_mnist_vae

TORCH_NAMES = ("zeros", "ones", "randn", "arange", "tensor", "is_tensor")


def torch_state():
    return (
        {name: getattr(torch, name) for name in TORCH_NAMES},
        torch.distributions.Normal,
        nn.Module.__call__,
        nn.Module.__getattr__,
        torch.distributions.Distribution.__dict__.get("__new__"),
    )


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
        self.cache.copy_(joined[..., -2:])
        self.calls = getattr(self, "calls", 0) + 1
        return self.conv(joined)


def test_tracing_writes_nothing_on_the_model():
    model = Streaming().train()
    snapshot = state_snapshot(model)
    attributes = set(vars(model))
    bended = tb.BendedModule(model)
    x = torch.randn(2, 3, 8)
    with pytest.raises(tb.ColdStateError, match=r"registered buffers .*\(cache\).*Call the method once"):
        bended.trace("forward", x)  # cold: the cache would be recorded as made afresh at every call
    assert_unchanged(model, snapshot)
    assert set(vars(model)) == attributes and not hasattr(model, "cache")
    model(x)  # warm: the cache exists
    snapshot = state_snapshot(model)
    attributes = set(vars(model))
    bended.trace("forward", x)
    assert_unchanged(model, snapshot)  # batch-norm statistics and the cache are as they were
    assert set(vars(model)) == attributes
    assert bended.trace_report("forward").rows[0][:2] == ["mode", "traced"]


def test_a_warm_streaming_model_streams_through_its_trace():
    model = Streaming().eval()
    chunks = torch.randn(3, 2, 3, 8)
    model(torch.zeros(2, 3, 8))
    model.cache.zero_()
    plain = [model(c) for c in chunks]
    model.cache.zero_()
    bended = tb.BendedModule(model, buffers=["cache"])
    bended.trace("forward", torch.zeros(2, 3, 8))
    model.cache.zero_()
    assert all(torch.allclose(bended(c), p, atol=1e-6) for c, p in zip(chunks, plain))


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


class Assigning(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("cache", torch.zeros(1, 3, 2))

    def forward(self, x):
        joined = torch.cat([self.cache, x], -1)
        self.cache = joined[..., -2:]
        return joined


def test_a_buffer_assigned_during_the_call_is_refused():
    model = Assigning()
    bended = tb.BendedModule(model)
    with pytest.raises(tb.ColdStateError, match=r"assigns new tensors to buffers .*cache.*copy_"):
        bended.trace("forward", torch.randn(1, 3, 4))
    assert torch.equal(model.cache, torch.zeros(1, 3, 2))


def test_a_cold_cached_convolution_is_refused_then_traces_warm():
    cc = pytest.importorskip("cached_conv")
    cc.use_cached_conv(True)
    try:
        model = nn.Sequential(cc.Conv1d(2, 2, 3, padding=cc.get_padding(3)))
    finally:
        cc.use_cached_conv(False)
    with pytest.raises(tb.ColdStateError, match=r"registered buffers .*pad"):
        tb.BendedModule(model).trace("forward", torch.zeros(1, 2, 8))
    model(torch.zeros(1, 2, 8))
    bended = tb.BendedModule(model, buffers=[r".*pad"])
    bended.trace("forward", torch.zeros(1, 2, 8))
    chunks = torch.randn(3, 1, 2, 8)
    for b in model.buffers():
        b.zero_()
    plain = [model(c) for c in chunks]
    for b in model.buffers():
        b.zero_()
    assert all(torch.allclose(bended(c), p, atol=1e-6) for c, p in zip(chunks, plain))
