"""tb.distributions: torch's numbers, TorchScript, tracing, bending and exports."""

import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import torchbend as tb
from conftest import seeded
from torchbend import distributions as D

pytestmark = pytest.mark.filterwarnings("ignore")
td = torch.distributions


def _pairs():
    g = torch.Generator().manual_seed(0)
    loc, scale = torch.randn(3, 4, generator=g), torch.rand(3, 4, generator=g) + 0.1
    probs, logits = torch.rand(3, 5, generator=g), torch.randn(3, 5, generator=g)
    probs[0, 0] = 0.5  # Bernoulli's mode is NaN there
    return [
        (D.Normal(loc, scale), td.Normal(loc, scale)),
        (D.Uniform(loc, loc + scale), td.Uniform(loc, loc + scale)),
        (D.Bernoulli(probs=probs), td.Bernoulli(probs=probs)),
        (D.Bernoulli(logits=logits), td.Bernoulli(logits=logits)),
        (D.Categorical(probs=probs), td.Categorical(probs=probs)),
        (D.Categorical(logits=logits), td.Categorical(logits=logits)),
    ]


PAIRS = _pairs()
IDS = ["normal", "uniform", "bernoulli-probs", "bernoulli-logits", "categorical-probs", "categorical-logits"]


@pytest.mark.parametrize(("ours", "theirs"), PAIRS, ids=IDS)
def test_numbers_and_draws_are_torchs(ours, theirs):
    for shape in ([], [7], [2, 3]):
        torch.manual_seed(1)
        drawn = ours.sample(shape)
        torch.manual_seed(1)
        expected = theirs.sample(torch.Size(shape))
        assert drawn.shape == expected.shape and torch.equal(drawn, expected)  # same draw from the same state
        assert torch.equal(ours.log_prob(expected), theirs.log_prob(expected))
    assert torch.allclose(ours.entropy(), theirs.entropy())
    for name in ("mean", "mode", "stddev", "variance"):
        assert torch.allclose(getattr(ours, name), getattr(theirs, name), equal_nan=True), name
    back = ours.to_torch()
    made_from = ["_param"] if hasattr(theirs, "_param") else list(theirs.arg_constraints)  # the same argument
    assert type(back) is type(theirs) and all(torch.allclose(getattr(back, a), getattr(theirs, a)) for a in made_from)
    again = D.from_torch(theirs)
    assert type(again) is type(ours) and all(torch.allclose(a, b) for a, b in zip(again.as_tuple(), ours.as_tuple()))


@pytest.mark.parametrize(("ours", "theirs"), [PAIRS[0], PAIRS[1]], ids=IDS[:2])
def test_rsample_is_torchs_and_carries_gradients(ours, theirs):
    params = [p.clone().requires_grad_() for p in ours.as_tuple()]
    ours = type(ours)(*params)
    torch.manual_seed(2)
    drawn = ours.rsample([5])
    torch.manual_seed(2)
    assert torch.equal(drawn, theirs.rsample(torch.Size([5])))
    drawn.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
    assert not ours.sample([5]).requires_grad


def test_log_prob_outside_the_support_and_sample_statistics():
    uniform = D.Uniform(torch.zeros(2), torch.full((2,), 2.0))
    outside = torch.tensor([-1.0, 2.0])
    theirs = td.Uniform(torch.zeros(2), torch.full((2,), 2.0), validate_args=False)  # torch's would raise
    assert torch.equal(uniform.log_prob(outside), theirs.log_prob(outside))
    assert uniform.log_prob(outside).isneginf().all()
    torch.manual_seed(0)
    normal = D.Normal(torch.tensor([3.0, -1.0]), torch.tensor([0.5, 2.0])).sample([20000])
    assert torch.allclose(normal.mean(0), torch.tensor([3.0, -1.0]), atol=0.05)
    assert torch.allclose(normal.std(0), torch.tensor([0.5, 2.0]), rtol=0.03)
    flips = D.Bernoulli(probs=torch.tensor([0.2, 0.9])).sample([20000])
    assert torch.allclose(flips.mean(0), torch.tensor([0.2, 0.9]), atol=0.02)
    picks = D.Categorical(probs=torch.tensor([1.0, 3.0, 0.0])).sample([20000])
    assert torch.allclose(torch.bincount(picks, minlength=3) / 20000.0, torch.tensor([0.25, 0.75, 0.0]), atol=0.02)
    drawn = uniform.sample([20000])
    assert drawn.min() >= 0 and drawn.max() < 2 and torch.allclose(drawn.mean(0), torch.ones(2), atol=0.03)


def test_bad_parameters_are_refused_when_made():
    with pytest.raises(ValueError, match="scale must be positive"):
        D.Normal(torch.zeros(2), torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="exactly one"):
        D.Bernoulli(probs=torch.rand(2), logits=torch.rand(2))
    with pytest.raises(ValueError, match="exactly one"):
        D.Categorical()
    with pytest.raises(ValueError, match=r"probs must lie in \[0, 1\]"):
        D.Bernoulli(probs=torch.tensor([1.5]))
    with pytest.raises(ValueError, match="not be negative"):
        D.Categorical(probs=torch.tensor([0.5, -0.1]))
    with pytest.raises(ValueError, match="at least one dimension"):
        D.Categorical(logits=torch.tensor(0.0))
    with pytest.raises(ValueError, match="low must be below high"):
        D.Uniform(torch.ones(2), torch.ones(2))
    with pytest.raises(TypeError, match="not Poisson"):
        D.from_torch(td.Poisson(torch.ones(2)))
    torch_normal = td.Normal(torch.zeros(1), torch.ones(1))
    assert D.convert_to_torch(torch_normal) is torch_normal and D.convert_from_torch is D.from_torch


class Encoder(nn.Module):
    """A small VAE encoder whose methods return tb.distributions objects."""

    def __init__(self):
        super().__init__()
        self.net = nn.Linear(4, 6)
        self.act = nn.Tanh()

    @torch.jit.export
    def encode(self, x):
        mu, s = self.act(self.net(x)).chunk(2, dim=-1)
        return D.Normal(mu, F.softplus(s))

    def forward(self, x):
        posterior = self.encode(x)
        return posterior.rsample() + posterior.log_prob(posterior.mean)

    @torch.jit.export
    def flip(self, x):
        return D.Bernoulli(logits=self.net(x))

    @torch.jit.export
    def pick(self, x):
        return D.Categorical(probs=F.softmax(self.net(x), dim=-1))

    @torch.jit.export
    def spread(self, x):
        h = self.net(x)
        return D.Uniform(h, h + F.softplus(h) + 0.1)


METHODS = {
    "encode": ("loc", "scale"),
    "flip": ("probs", "logits"),
    "pick": ("probs", "logits"),
    "spread": ("low", "high"),
}


def test_a_module_returning_them_scripts_with_plain_torch_jit_script():
    model = seeded(Encoder())
    scripted = torch.jit.script(model)
    x = torch.randn(2, 4)
    for fn, names in METHODS.items():
        out, expected = getattr(scripted, fn)(x), getattr(model, fn)(x)
        assert type(out) is type(expected)
        assert all(torch.allclose(getattr(out, n), getattr(expected, n), atol=1e-6) for n in names)
    torch.manual_seed(0)
    out = scripted(x)
    torch.manual_seed(0)
    assert torch.allclose(out, model(x), atol=1e-6)


def test_tracing_makes_one_node_that_plain_fx_makes_too():
    model = seeded(Encoder())
    bended = tb.BendedModule(model)
    x = torch.randn(2, 4)
    for fn in METHODS:
        bended.trace(fn, x)
    assert bended.activation_names("encode") == [
        "x",
        "net",
        "act",
        "chunk",
        "getitem",
        "getitem_1",
        "softplus",
        "Normal",
    ]
    assert bended.activation_names("flip")[-1] == "Bernoulli" and bended.activation_names("pick")[-1] == "Categorical"
    for fn, names in METHODS.items():
        out, expected = getattr(bended, fn)(x), getattr(model, fn)(x)
        assert type(out) is type(expected) and all(torch.equal(getattr(out, n), getattr(expected, n)) for n in names)
    graph = torch.fx.symbolic_trace(model).graph  # forward, with plain torch.fx
    assert [n.target for n in graph.nodes if n.op == "call_function"].count(D.Normal) == 1


def test_conversions_trace_as_one_node_each():
    class Converting(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(4, 4)

        def forward(self, x):
            mu, s = self.net(x).chunk(2, dim=-1)
            return D.from_torch(td.Normal(mu, s.exp())), D.convert_to_torch(D.Uniform(mu, mu + 1))

    model = seeded(Converting())
    bended = tb.BendedModule(model)
    x = torch.randn(2, 4)
    bended.trace("forward", x)
    assert bended.activation_names()[-5:] == ["Normal", "from_torch", "add", "Uniform", "to_torch"]
    (ours, theirs), (plain_ours, plain_theirs) = bended(x), model(x)
    assert isinstance(ours, D.Normal) and torch.equal(ours.scale, plain_ours.scale)
    assert isinstance(theirs, td.Uniform) and torch.equal(theirs.high, plain_theirs.high)


def test_a_bent_encoder_changes_the_distributions_parameters_and_resets_exactly():
    model = seeded(Encoder())
    bended = tb.BendedModule(model)
    x = torch.randn(3, 4)
    bended.trace("encode", x)
    plain = model.encode(x)
    bended.bend(tb.Scale(tb.BendingParameter("gain", 0.5)), "act")
    bent = bended.encode(x)
    h = 0.5 * torch.tanh(model.net(x))
    assert torch.allclose(bent.loc, h[:, :3]) and torch.allclose(bent.scale, F.softplus(h[:, 3:]))
    assert not torch.allclose(bent.loc, plain.loc)
    bended.update("gain", 1.0)
    assert torch.equal(bended.encode(x).loc, plain.loc)
    bended.bend(tb.Scale(-1.0), "softplus")  # a negative scale is refused, as the plain class refuses it
    with pytest.raises(ValueError, match="scale must be positive"):
        bended.encode(x)
    bended.reset()
    again = bended.encode(x)
    assert torch.equal(again.loc, plain.loc) and torch.equal(again.scale, plain.scale)
    assert torch.equal(model.encode(x).scale, plain.scale)


def test_exports_return_the_class_or_for_torch_export_its_parameters(tmp_path):
    model = seeded(Encoder())
    bended = tb.BendedModule(model)
    x = torch.randn(2, 4)
    for fn in ("encode", "forward", "flip"):
        bended.trace(fn, x)
    bended.bend(tb.Scale(tb.BendingParameter("gain", 2.0)), "net.weight")
    bended.bend(tb.Bias(0.1), "act")
    scripted = bended.script()
    eager, out = bended.encode(x), scripted.encode(x)
    assert isinstance(out, D.Normal)
    assert torch.allclose(out.loc, eager.loc, atol=1e-6) and torch.allclose(out.scale, eager.scale, atol=1e-6)
    assert isinstance(scripted.flip(x), D.Bernoulli)
    scripted.set_gain(1.0)
    bended.update("gain", 1.0)
    torch.manual_seed(0)
    sampled = scripted(x)  # the distribution used inside the method (rsample, log_prob, mean)
    torch.manual_seed(0)
    assert torch.allclose(sampled, bended(x), atol=1e-5)
    path = bended.export(tmp_path / "encode.pt2", "encode", x)
    program = torch.export.load(str(path)).module()
    params = program(x, gain=torch.tensor(1.0))
    assert sorted(params) == ["loc", "scale"]
    assert torch.allclose(params["scale"], bended.encode(x).scale, atol=1e-6)
    path = bended.export(tmp_path / "forward.pt2", "forward", x)
    torch.manual_seed(1)
    sampled = torch.export.load(str(path)).module()(x, gain=torch.tensor(1.0))
    torch.manual_seed(1)
    assert torch.allclose(sampled, bended(x), atol=1e-5)


def test_a_saved_export_gives_the_class_back_in_a_fresh_process(tmp_path):
    model = seeded(Encoder())
    bended = tb.BendedModule(model)
    x = torch.randn(2, 4)
    bended.trace("encode", x)
    bended.bend(tb.Scale(2.0), "act")
    torch.jit.save(bended.script(), tmp_path / "enc.ts")
    torch.save({"x": x, "loc": bended.encode(x).loc}, tmp_path / "expected.pt")
    code = textwrap.dedent(f"""
        import sys, torch, torchbend as tb
        assert "torchbend.distributions" not in sys.modules  # import torchbend stays light
        D = tb.distributions
        m = torch.jit.load({str(tmp_path / "enc.ts")!r})
        e = torch.load({str(tmp_path / "expected.pt")!r})
        d = m.encode(e["x"])
        assert isinstance(d, D.Normal), type(d)
        assert torch.allclose(d.loc, e["loc"], atol=1e-6)
        assert d.log_prob(d.sample([3])).shape == (3, 2, 3)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
