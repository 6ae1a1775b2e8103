"""The live-safe engine: threads calling bent and plain methods while others change parameters and bends."""

import threading

import pytest
import torch

import torchbend as tb
from conftest import TiedRecurrent, assert_unchanged, seeded, state_snapshot
from torchbend.zoo import load_mnist_vae


def run_threads(*targets):
    errors = []

    def guarded(fn):
        def run():
            try:
                fn()
            except BaseException as error:  # reported by the test, not lost in the thread
                errors.append(error)

        return run

    threads = [threading.Thread(target=guarded(fn)) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


@pytest.fixture(scope="module")
def mnist():
    return load_mnist_vae()


def test_bent_and_plain_calls_from_threads_never_mix(mnist):
    vae = mnist
    z = torch.randn(4, 64, generator=torch.Generator().manual_seed(0))
    snapshot = state_snapshot(vae)
    plain = vae.decode(z)
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    bended.bend(tb.Scale(3.0), "decoder.net.convt1.weight")
    bended.bend(tb.Scale(0.5), "decoder_net_convt2", fn="decode")
    bent = bended.decode(z)
    assert not torch.allclose(bent, plain)
    wrong = {"bent": 0, "plain": 0}

    def bent_calls():
        for _ in range(150):
            wrong["bent"] += not torch.equal(bended.decode(z), bent)

    def plain_calls():
        for _ in range(150):
            wrong["plain"] += not torch.equal(vae.decode(z), plain)

    run_threads(bent_calls, bent_calls, plain_calls)
    assert wrong == {"bent": 0, "plain": 0}
    assert_unchanged(vae, snapshot)


def test_tied_weights_and_an_lstm_under_threads():
    model = seeded(TiedRecurrent())
    tokens = torch.randint(0, 11, (3, 5), generator=torch.Generator().manual_seed(0))
    snapshot = state_snapshot(model)
    plain = model(tokens)
    bended = tb.BendedModule(model)
    bended.trace("forward", tokens)
    bended.bend(tb.Scale(2.0), "embed.weight", "lstm.weight_hh_l0")
    with torch.no_grad():
        expected = torch.nn.functional.linear(
            torch.nn.functional.lstm
            if False
            else _lstm_with(model, 2 * model.lstm.weight_hh_l0)(
                torch.nn.functional.embedding(tokens, 2 * model.embed.weight)
            ),
            2 * model.embed.weight,
        )
    assert torch.allclose(bended(tokens), expected, atol=1e-6)
    bent = bended(tokens)
    wrong = []

    def bent_calls():
        for _ in range(100):
            wrong.append(not torch.equal(bended(tokens), bent))

    def plain_calls():
        for _ in range(100):
            wrong.append(not torch.equal(model(tokens), plain))

    run_threads(bent_calls, bent_calls, plain_calls)
    assert sum(wrong) == 0
    assert_unchanged(model, snapshot)


def _lstm_with(model, weight_hh):
    lstm = torch.nn.LSTM(6, 6, batch_first=True)
    lstm.load_state_dict({**model.lstm.state_dict(), "weight_hh_l0": weight_hh})
    return lambda x: lstm(x)[0]


def test_each_call_sees_one_value_of_a_parameter_changed_by_another_thread(mnist):
    vae = mnist
    z = torch.randn(2, 64, generator=torch.Generator().manual_seed(1))
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    gain = tb.BendingParameter("gain", 1.0, range=(0.0, 4.0))
    bended.bend(tb.Scale(gain), "decoder.net.convt1.weight")  # a weight and an activation read the same value
    bended.bend(tb.Scale(gain), "decoder_net_convt2", fn="decode")
    values = [0.5, 1.0, 1.5, 2.0]
    expected = []
    for v in values:
        bended.update("gain", v)
        expected.append(bended.decode(z))
    outputs = []
    stop = threading.Event()

    def knob():
        i = 0
        while not stop.is_set():
            bended.update("gain", values[i % len(values)])
            i += 1

    def calls():
        for _ in range(120):
            outputs.append(bended.decode(z))

    knob_thread = threading.Thread(target=knob)
    knob_thread.start()
    try:
        run_threads(calls, calls)
    finally:
        stop.set()
        knob_thread.join()
    matched = [any(torch.equal(out, e) for e in expected) for out in outputs]
    assert all(matched), f"{matched.count(False)} of {len(outputs)} outputs mixed two values"
    bended.update("gain", 1.5)  # the last change is never lost
    assert torch.equal(bended.decode(z), expected[2])


def test_a_change_during_a_weight_recompute_is_not_lost(vae, z):
    bended = tb.BendedModule(vae)
    gain = tb.BendingParameter("gain", 1.0)
    entered, release = threading.Event(), threading.Event()

    class SlowScale(tb.Scale):
        def forward(self, x, state):
            if float(self.scale) == 2.0:  # the recompute for 2.0 waits while the knob moves on to 3.0
                entered.set()
                release.wait(5)
            return super().forward(x, state)

    bended.bend(SlowScale(gain), "decoder.fc.weight")

    def call_at_two():
        gain.value = 2.0
        bended.decode(z)

    caller = threading.Thread(target=call_at_two)
    caller.start()
    assert entered.wait(5)
    gain.value = 3.0  # while the weights for 2.0 are being computed
    release.set()
    caller.join()
    fc = vae.decoder["fc"]
    h = torch.nn.functional.linear(z, 3.0 * fc.weight, fc.bias).view(z.shape[0], 8, 7, 7)
    assert torch.allclose(bended.decode(z), vae.decoder["net"](h), atol=1e-6)


def test_bends_added_and_removed_while_calls_run(mnist):
    vae = mnist
    z = torch.randn(2, 64, generator=torch.Generator().manual_seed(2))
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    plain = vae.decode(z)
    with bended.bend(tb.Scale(0.0), "decoder_net_convt1", fn="decode"):
        bent = bended.decode(z)
    allowed = [plain, bent]
    results = []

    def toggler():
        for _ in range(40):
            with bended.bend(tb.Scale(0.0), "decoder_net_convt1", fn="decode"):
                pass

    def calls():
        for _ in range(80):
            results.append(bended.decode(z))

    run_threads(toggler, calls, calls)
    assert all(any(torch.equal(r, a) for a in allowed) for r in results)
    assert torch.equal(bended.decode(z), plain)


class Flaky(tb.BendingCallback):
    """Raises (an error or KeyboardInterrupt) on its next call when armed."""

    controls = ()

    def __init__(self):
        super().__init__()
        self.armed = None

    def forward(self, x, state):
        if self.armed is not None:
            error, self.armed = self.armed, None
            raise error
        return x * 2


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_faults_in_a_callback_leave_nothing_behind(vae, z, error):
    snapshot = state_snapshot(vae)
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    bended.bend(tb.Mask(0.5, seed=0), "decoder.net.convt0.weight", "decoder.fc.weight")
    flaky = Flaky()
    bended.bend(flaky, "decoder_net_relu0", fn="decode")
    expected = bended.decode(z)
    flaky.armed = error
    with pytest.raises(type(error)):
        bended.decode(z)
    assert_unchanged(vae, snapshot)
    assert torch.equal(bended.decode(z), expected)
    bended.reset()
    assert torch.equal(bended.decode(z), vae.decode(z))


def test_a_model_raising_mid_call_leaves_nothing_behind(vae, z):
    class Fails(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = vae
            self.fail = False

        def forward(self, z):
            h = self.inner.decoder["fc"](z)
            if self.fail:
                raise ValueError("the model's own error")
            return h

    model = Fails()
    snapshot = state_snapshot(model)
    bended = tb.BendedModule(model)
    bended.bend(tb.Scale(0.0), "inner.decoder.fc.weight")  # untraced: the model's own code runs on the view
    expected = bended(z)
    model.fail = True
    with pytest.raises(ValueError, match="own error"):
        bended(z)
    model.fail = False
    assert_unchanged(model, snapshot)
    assert torch.equal(bended(z), expected)
    assert torch.equal(model(z), vae.decoder["fc"](z))


def test_train_eval_to_and_hooks_on_the_wrapped_model_reach_bent_calls(vae, z):
    bended = tb.BendedModule(vae)
    bended.bend(tb.Scale(1.0), "decoder.net.bn0.weight")  # the BatchNorm itself is copied
    vae.train()
    assert torch.equal(bended.decode(z), vae.decode(z))  # batch statistics, as in the plain call
    vae.eval()
    assert torch.equal(bended.decode(z), vae.decode(z))
    seen = []
    handle = vae.decoder["net"].bn0.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    bended.decode(z)
    handle.remove()
    assert seen == [(16, 4, 14, 14)]
    bended.to(torch.float64)
    assert bended.decode(z.double()).dtype == torch.float64
    bended.to(torch.float32)


def test_retrace_follows_the_path_the_bends_take():
    class Gate(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(3, 3)
            self.b = torch.nn.Linear(3, 3)

        def forward(self, x):
            h = self.a(x)
            if h.sum() > 0:  # e.g. an end-of-sequence check
                return self.b(h)
            return -h

    model = seeded(Gate())
    x = torch.ones(2, 3)
    with torch.no_grad():
        model.a.bias.fill_(1.0)
    bended = tb.BendedModule(model)
    bended.trace("forward", x, retrace=True)
    bended.bend(tb.Scale(-10.0), "a")  # flips the branch on the traced input itself
    assert torch.allclose(bended(x), 10.0 * model.a(x))
    assert bended.trace_report().rows[-1][0] == "retraced"


def test_hooked_methods_keep_threads_apart():
    class NumpyStep(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 3)

        def forward(self, x):
            return self.lin(torch.from_numpy(x.numpy() * 1.0))  # leaves torch: falls back to hooks

    model = seeded(NumpyStep())
    x = torch.randn(2, 3)
    a, b = tb.BendedModule(model), tb.BendedModule(model)
    with pytest.warns(UserWarning, match="falling back to hooks"):
        a.trace("forward", x)
    with pytest.warns(UserWarning, match="falling back to hooks"):
        b.trace("forward", x)
    a.bend(tb.Scale(2.0), "lin")
    b.bend(tb.Scale(-1.0), "lin")
    plain = model(x)
    wrong = []

    def calls(bended, factor):
        def run():
            for _ in range(150):
                wrong.append(not torch.allclose(bended(x), factor * plain))

        return run

    run_threads(calls(a, 2.0), calls(b, -1.0), calls(model, 1.0))
    assert sum(wrong) == 0
    assert model.lin._forward_hooks == {}


def test_parameters_kept_in_containers_inside_a_callback_are_live(vae, z):
    class Gains(tb.BendingCallback):
        def __init__(self, gains):
            super().__init__()
            self.gains = gains  # a dict of live values: still seen

        def forward(self, x, state):
            return x * float(self.gains["a"])

    a = tb.BendingParameter("a", 1.0)
    bended = tb.BendedModule(vae)
    bended.bend(Gains({"a": a}), "decoder.fc.weight")
    assert bended.controllables == {"a": a}
    bended.update("a", 0.0)
    fc = vae.decoder["fc"]
    assert torch.allclose(bended.decode(z), vae.decoder["net"](fc.bias.expand(z.shape[0], -1).view(-1, 8, 7, 7)))


def test_generated_source_is_released_with_its_program(vae, z):
    import gc
    import linecache

    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    before = {k for k in linecache.cache if k.startswith("<torchbend")}
    for scale in (1.0, 2.0, 3.0):
        with bended.bend(tb.Scale(scale), "decoder_net_convt0", fn="decode"):
            bended.decode(z)
    bended.decode(z)
    gc.collect()
    after = {k for k in linecache.cache if k.startswith("<torchbend")}
    assert len(after - before) <= 1  # only the program in use now


def test_a_submodule_named_like_a_float_constant_exports():
    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inf = torch.nn.Linear(3, 3)

        def forward(self, x):
            return self.inf(x).clamp(max=float("inf"))

    bended = tb.BendedModule(seeded(Odd()))
    x = torch.randn(2, 3)
    bended.trace("forward", x)
    bended.bend(tb.Scale(2.0), "inf.weight")
    assert torch.allclose(bended.script()(x), bended(x), atol=1e-6)


def test_hooks_added_to_the_model_after_a_bend_run_in_bent_calls_and_tracing_adds_none():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    x = torch.randn(3, 4)
    bended = tb.BendedModule(model)
    bended.trace("forward", x)
    bended.bend(tb.Scale(2.0), "0.weight")  # module 0 now runs as a copy holding the bent weight
    seen = []
    handle = model[0].register_forward_hook(lambda module, inputs, output: seen.append(output.shape))
    bended(x)
    assert seen == [torch.Size([3, 4])]
    handle.remove()
    bended(x)
    assert len(seen) == 1
    bended.trace("forward", x)  # a recording run on an isolated view leaves the model's hook tables as they were
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
