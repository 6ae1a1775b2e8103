"""TorchScript, nn~ and torch.export exports keep the bends and their live parameters."""

import builtins
import subprocess
import sys
import textwrap
from collections.abc import Iterable

import pytest
import torch

import torchbend as tb
from conftest import ConvVAE, Crafted, crafted_name, seeded
from corpus import RaveLikeDecoder
from torchbend.export.codegen import ExportError

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture
def bent():
    model = seeded(ConvVAE())
    bended = tb.BendedModule(model)
    z, x = torch.randn(4, 8), torch.rand(4, 1, 28, 28)
    bended.trace("decode", z=z)
    bended.trace("forward", x)
    keep = tb.BendingParameter("keep", 0.5, range=(0.0, 1.0))
    bended.bend(tb.Mask(keep, seed=0), "decoder.net.convt1.weight")
    bended.bend(tb.Scale(2 * keep) >> tb.Normal(0.1, seed=1, dim=1), "decoder_net_relu0")
    bended.bend(tb.ThresholdActivation(0.5, dim=1), "decoder_net_convt0", fn="decode")
    return bended, z, x


def test_scripted_methods_share_weights_and_live_parameters(bent):
    bended, z, x = bent
    scripted = bended.script()
    assert isinstance(scripted, torch.jit.ScriptModule)
    assert torch.allclose(scripted.decode(z), bended.decode(z), atol=1e-6)
    assert torch.allclose(scripted(x), bended(x), atol=1e-6)
    assert scripted.get_keep() == 0.5
    assert scripted.set_keep(0.9) == 0
    bended.update("keep", 0.9)
    assert torch.allclose(scripted.decode(z), bended.decode(z), atol=1e-6)  # weight and activation bends
    assert torch.allclose(scripted(x), bended(x), atol=1e-6)  # ...in every method
    with pytest.raises(torch.jit.Error, match="keep: value above its range"):
        scripted.set_keep(1.5)
    assert not torch.allclose(scripted.decode(z), seeded(ConvVAE()).decode(z))


def test_scripted_module_round_trips_through_a_file_in_a_fresh_process(bent, tmp_path):
    bended, z, _ = bent
    scripted = bended.script(["decode"])
    scripted.set_keep(0.7)
    torch.jit.save(scripted, tmp_path / "bent.ts")
    torch.save({"z": z, "out": scripted.decode(z)}, tmp_path / "expected.pt")
    code = textwrap.dedent(f"""
        import torch
        m = torch.jit.load({str(tmp_path / "bent.ts")!r})
        e = torch.load({str(tmp_path / "expected.pt")!r})
        assert m.get_keep() == 0.7
        assert torch.equal(m.decode(e["z"]), e["out"])
        m.set_keep(0.2)
        assert not torch.equal(m.decode(e["z"]), e["out"])
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr


def test_runtime_inputs_become_optional_arguments():
    model = seeded(ConvVAE())
    bended = tb.BendedModule(model)
    z = torch.randn(2, 8)
    bended.trace("decode", z=z)
    bended.bend(tb.InterpolateActivation(), "decoder_net_convt0")
    scripted = bended.script()
    w = torch.tensor([[0.25, 0.75]])
    assert torch.allclose(scripted.decode(z, w), bended.decode(z, interp_weights=w), atol=1e-6)
    assert torch.allclose(scripted.decode(z), model.decode(z), atol=1e-6)


def cosine(t: torch.Tensor) -> torch.Tensor:
    return torch.cos(3 * t)


def test_what_cannot_be_scripted_is_named():
    bended = tb.BendedModule(seeded(ConvVAE()))
    bended.trace("decode", z=torch.randn(2, 8))
    bended.bend(tb.Capture(), "decoder_net_convt0")
    with pytest.raises(ExportError, match="decode:decoder_net_convt0: Capture has no TorchScript form"):
        bended.script()
    bended.reset()
    bended.bend(tb.Lambda(lambda t: t * 2), "decoder.fc.bias")
    with pytest.raises(ExportError, match="does not compile to TorchScript"):
        bended.script()
    bended.reset()
    bended.bend(tb.Lambda(cosine), "decoder.fc.bias")
    assert torch.allclose(bended.script().decode(torch.ones(1, 8)), bended.decode(torch.ones(1, 8)), atol=1e-6)
    with pytest.raises(ExportError, match="trace a method"):
        tb.BendedModule(seeded(ConvVAE())).script()


def test_nntilde_export_registers_methods_and_attributes(tmp_path):
    pytest.importorskip("nn_tilde")
    model = seeded(RaveLikeDecoder(batch=4))
    bended = tb.BendedModule(model)
    bended.trace("decode", torch.randn(2, 4, 6))
    gain = tb.BendingParameter("gain", 1.0, range=(0.0, 4.0))
    bended.bend(tb.Scale(gain), "up.weight")
    bended.bend(tb.Mask(0.7, seed=1, dim=1), "up")
    path = bended.export_nntilde(
        tmp_path / "bent.ts", methods={"decode": dict(in_channels=4, in_ratio=2, out_channels=1, out_ratio=1)}
    )
    loaded = torch.jit.load(str(path))
    # what nn~ reads and calls
    assert loaded.get_methods() == ["decode"] and loaded.get_attributes() == ["none", "gain"]
    assert loaded.decode_params.tolist() == [4, 2, 1, 1]
    assert loaded.get_gain() == 1.0 and loaded.set_gain(3.0) == 0 and loaded.get_gain() == 3.0
    z = torch.randn(1, 4, 512)
    bended.update("gain", 3.0)
    for name, buffer in list(loaded.named_buffers()) + list(model.named_buffers()):
        if name.endswith("cache"):
            buffer.zero_()  # both start streaming from silence
    torch.manual_seed(0)
    expected = bended.decode(z)
    torch.manual_seed(0)
    assert torch.allclose(loaded.decode(z), expected, atol=1e-5)


def test_nntilde_missing_is_a_clear_error(monkeypatch, bent):
    real_import = builtins.__import__

    def no_nntilde(name, *args, **kwargs):
        if name == "nn_tilde":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_nntilde)
    with pytest.raises(ExportError, match="nn-tilde==1.5.6"):
        bent[0].export_nntilde("x.ts", methods={"decode": {}})


def test_torch_export_takes_parameters_by_name_at_any_batch_size(tmp_path):
    from torchbend.export.torch_export import parameter_defaults

    model = seeded(ConvVAE())
    bended = tb.BendedModule(model)
    z = torch.randn(4, 8)
    bended.trace("decode", z=z)
    keep = tb.BendingParameter("keep", 0.5, range=(0.0, 1.0))
    bended.bend(tb.Mask(keep, seed=0), "decoder.net.convt1.weight")
    bended.bend(tb.Scale(tb.BendingParameter("gain", 2.0)), "decoder_net_relu0")
    path = bended.export(tmp_path / "bent.pt2", "decode", z)
    program = torch.export.load(str(path)).module()
    for batch in (3, 16):
        zb = torch.randn(batch, 8)
        assert torch.allclose(program(zb, keep=torch.tensor(0.5), gain=torch.tensor(2.0)), bended.decode(zb), atol=1e-5)
    bended.update("keep", 0.9)
    assert torch.allclose(program(z, gain=torch.tensor(2.0), keep=torch.tensor(0.9)), bended.decode(z), atol=1e-5)
    assert {k: v.item() for k, v in parameter_defaults(path).items()} == {"keep": 0.5, "gain": 2.0}
    assert torch.allclose(
        torch.export.load(str(bended.export(tmp_path / "b.pt2", "decode"))).module()(
            z, keep=torch.tensor(0.9), gain=torch.tensor(2.0)
        ),
        bended.decode(z),
        atol=1e-5,
    )  # inputs from the trace


def test_scripted_modules_list_their_parameters(bent, tmp_path):
    bended, _, _ = bent
    scripted = bended.script(["decode"])
    scripted.set_keep(0.25)
    torch.jit.save(scripted, tmp_path / "bent.ts")
    listed = torch.jit.load(str(tmp_path / "bent.ts")).bending_parameters()
    assert listed == [{"name": "keep", "type": "float", "min": "0.0", "max": "1.0", "value": "0.25"}]
    assert {"bending_parameters", "get_keep", "set_keep"} <= set(dir(scripted))


def fold_bands(x: torch.Tensor) -> torch.Tensor:
    """A PQMF-like decode step, kept opaque by torch.fx.wrap as real audio libraries do."""
    b, c, t = x.shape
    return x.reshape(b, 1, c * t) if c == 1 else x.transpose(1, 2).reshape(b, 1, c * t)


torch.fx.wrap("fold_bands")


def test_wrapped_functions_and_cached_convolutions_export_and_stream(tmp_path):
    cc = pytest.importorskip("cached_conv")
    pytest.importorskip("nn_tilde")
    cc.use_cached_conv(True)
    try:

        class Streaming(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = cc.Conv1d(4, 2, 3, padding=cc.get_padding(3))

            @torch.jit.export
            def decode(self, z):
                return fold_bands(torch.tanh(self.conv(z)))

        model = seeded(Streaming())
    finally:
        cc.use_cached_conv(False)
    model.decode(torch.zeros(1, 4, 8))  # warm up: caches exist before tracing
    for b in model.buffers():
        b.zero_()
    bended = tb.BendedModule(model, buffers=[r".*pad"])
    bended.trace("decode", torch.zeros(1, 4, 16))
    assert any(a.target.endswith("fold_bands") for a in bended.engine.record("decode").activations.values())
    bended.bend(tb.Scale(tb.BendingParameter("gain", 2.0)), "conv.weight")
    scripted = bended.script()
    chunks = torch.randn(3, 1, 4, 16)
    eager = torch.cat([bended.decode(c) for c in chunks], -1)
    for b in model.buffers():
        b.zero_()
    assert torch.allclose(torch.cat([scripted.decode(c) for c in chunks], -1), eager, atol=1e-6)
    path = bended.export_nntilde(
        tmp_path / "stream.ts",
        methods={"decode": dict(in_channels=4, in_ratio=1, out_channels=1, out_ratio=1, test_method=False)},
    )
    torch.save(chunks, tmp_path / "chunks.pt")
    code = (
        f"import torch; m = torch.jit.load({str(path)!r}); c = torch.load({str(tmp_path / 'chunks.pt')!r}); "
        "[b.zero_() for n, b in m.named_buffers() if n.endswith('pad')]; "
        f"torch.save(torch.cat([m.decode(x) for x in c], -1), {str(tmp_path / 'out.pt')!r})"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert torch.allclose(torch.load(tmp_path / "out.pt"), eager, atol=1e-6)


def test_setters_recompute_only_their_weights_and_swap_whole_tensors():
    from torchbend.export.codegen import ModuleSource

    bended = tb.BendedModule(seeded(ConvVAE()))
    z = torch.randn(2, 8)
    bended.trace("decode", z=z)
    gain = tb.BendingParameter("gain", 1.0, range=(0.0, 4.0))
    level = tb.BendingParameter("level", 1.0)
    bended.bend(tb.Scale(gain), "decoder.net.convt1.weight")
    bended.bend(tb.Scale(2.0), "decoder.fc.weight")
    bended.bend(tb.Scale(level), "decoder_net_convt0", fn="decode")
    source = ModuleSource(bended.engine, ["decode"]).source
    setter = {name: source.split(f"def set_{name}")[1].split("return 0")[0] for name in ("gain", "level")}
    assert "convt1.weight" in setter["gain"] and "fc.weight" not in setter["gain"]  # only the weight reading gain
    assert "_bend_w" not in setter["level"]  # an activation-only parameter is a store
    scripted = bended.script()
    held = scripted.m.decoder.net.convt1.weight  # what a call running now would be reading
    before = held.clone()
    scripted.set_gain(3.0)
    assert torch.equal(held, before)  # not written in place: the setter put a new tensor in its slot
    assert torch.allclose(scripted.m.decoder.net.convt1.weight, 3.0 * before)


def test_a_method_returning_a_distribution_exports_its_parameters():
    class Posterior(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(4, 6)

        def encode(self, x):
            mu, s = self.net(x).chunk(2, dim=-1)
            return torch.distributions.Normal(mu, torch.nn.functional.softplus(s))

    bended = tb.BendedModule(seeded(Posterior()))
    x = torch.randn(2, 4)
    bended.trace("encode", x)
    bended.bend(tb.Scale(2.0), "net.weight")
    eager = bended.encode(x)
    exported = bended.script().encode(x)
    assert sorted(exported) == ["loc", "scale"]
    assert torch.allclose(exported["loc"], eager.loc, atol=1e-6)
    assert torch.allclose(exported["scale"], eager.scale, atol=1e-6)


def test_a_method_reading_a_distributions_parameters_exports_and_sampling_is_named():
    class Posterior(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(4, 6)

        def encode(self, x):
            mu, s = self.net(x).chunk(2, dim=-1)
            return torch.distributions.Normal(mu, torch.nn.functional.softplus(s))

        def forward(self, x):
            posterior = self.encode(x)
            return posterior.loc + 0.1 * posterior.scale

        def sample(self, x):
            return self.encode(x).rsample()

    bended = tb.BendedModule(seeded(Posterior()))
    x = torch.randn(2, 4)
    bended.trace("forward", x)
    bended.bend(tb.Scale(tb.BendingParameter("gain", 2.0)), "net.weight")
    scripted = bended.script()
    assert torch.allclose(scripted(x), bended(x), atol=1e-6)
    scripted.set_gain(1.0)
    assert torch.allclose(scripted(x), bended.module(x), atol=1e-6)
    bended.trace("sample", x)
    with pytest.raises(ExportError, match=r"sample uses the Normal distribution .* \(rsample"):
        bended.script(["sample"])


def test_a_crafted_submodule_name_never_runs_during_export(tmp_path, monkeypatch):
    monkeypatch.delattr(builtins, "tb_pwned_export", raising=False)
    bended = tb.BendedModule(Crafted(crafted_name("tb_pwned_export")))
    x = torch.randn(2, 3)
    bended.trace("forward", x)
    bended.bend(tb.Scale(2.0), "add")
    torch.testing.assert_close(bended(x), 2 * (bended.module(x)))  # bending it live is fine
    with pytest.raises(ExportError, match="cannot be written into generated code"):
        bended.script()
    with pytest.raises(ExportError, match="cannot be written into generated code"):
        bended.export(tmp_path / "bent.pt2", "forward", x)
    bended.reset()
    bended.bend(tb.Scale(2.0), r".*\.weight")
    with pytest.raises(ExportError, match="cannot be written into"):
        bended.script()
    assert not hasattr(builtins, "tb_pwned_export")


def test_plain_odd_submodule_names_still_export():
    model = Crafted("conv-1 (odd)")
    bended = tb.BendedModule(model)
    x = torch.randn(2, 3)
    bended.trace("forward", x)
    bended.bend(tb.Scale(2.0), "conv-1 (odd).weight")
    torch.testing.assert_close(bended.script()(x), bended(x))


def test_a_parameter_named_like_a_traced_method_or_an_accessor_is_refused():
    bended = tb.BendedModule(seeded(ConvVAE()))
    bended.trace("decode", z=torch.randn(2, 8))
    bended.bend(tb.Scale(tb.BendingParameter("decode", 2.0)), "decoder_net_convt0")
    with pytest.raises(ExportError, match="parameter named 'decode' would clash"):
        bended.script()
    bended.reset()
    bended.bend(tb.Scale(tb.BendingParameter("gain", 2.0)), "decoder_net_convt0")
    bended.bend(tb.Bias(tb.BendingParameter("get_gain", 0.5)), "decoder_net_convt1")
    with pytest.raises(ExportError, match="parameter named 'get_gain' would clash"):
        bended.script()


def test_an_export_is_taken_from_one_state_while_another_thread_changes_bends():
    import threading

    from torchbend.zoo import load_mnist_vae

    vae = load_mnist_vae()
    z = torch.randn(2, 64, generator=torch.Generator().manual_seed(0))
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    bended.bend(tb.Scale(2.0), "decoder.net.convt1.weight")
    with bended.bend(tb.Scale(0.0), "decoder_net_convt2", fn="decode"):
        both = bended.decode(z)
    one = bended.decode(z)
    stop = threading.Event()

    def toggle():
        while not stop.is_set():
            with bended.bend(tb.Scale(0.0), "decoder_net_convt2", fn="decode"):
                pass

    thread = threading.Thread(target=toggle)
    thread.start()
    try:
        outputs = [bended.script().decode(z) for _ in range(4)]
    finally:
        stop.set()
        thread.join()
    assert all(torch.allclose(o, one, atol=1e-6) or torch.allclose(o, both, atol=1e-6) for o in outputs)


class PQMF(torch.nn.Module):
    """A band splitter with an `inverse` method, as RAVE's PQMF (a filter bank run by strided convolutions)."""

    def __init__(self, bands: int = 4) -> None:
        super().__init__()
        self.bands = bands
        self.register_buffer("h", torch.randn(bands, 1, 8, generator=torch.Generator().manual_seed(0)) / 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv1d(x, self.h, stride=self.bands, padding=4)[..., : x.shape[-1] // self.bands]

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv_transpose1d(x, self.h, stride=self.bands, padding=2)[
            ..., : x.shape[-1] * self.bands
        ]


@torch.fx.wrap
def _pqmf_encode(pqmf, x: torch.Tensor):  # RAVE's own code (rave/model.py, acids-rave 2.3.1)
    batch_size = x.shape[:-2]
    x_multiband = x.reshape(-1, 1, x.shape[-1])
    x_multiband = pqmf(x_multiband)
    x_multiband = x_multiband.reshape(*batch_size, -1, x_multiband.shape[-1])
    return x_multiband


@torch.fx.wrap
def _pqmf_decode(pqmf, x: torch.Tensor, batch_size: Iterable[int], n_channels: int):
    x = x.reshape(x.shape[0] * n_channels, -1, x.shape[-1])
    x = pqmf.inverse(x)
    x = x.reshape(*batch_size, n_channels, -1)
    return x


class RaveLikeAutoencoder(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pqmf = PQMF()
        self.encoder = torch.nn.Conv1d(4, 8, 3, padding=1)
        self.decoder = torch.nn.Conv1d(8, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch_size = x.shape[:-2]
        z = self.encoder(_pqmf_encode(self.pqmf, x))
        return _pqmf_decode(self.pqmf, torch.tanh(self.decoder(z)), batch_size=batch_size, n_channels=1)


def test_rave_wrapped_functions_taking_the_pqmf_module_export(tmp_path):
    model = seeded(RaveLikeAutoencoder())
    x = torch.randn(2, 1, 64)
    bended = tb.BendedModule(model)
    bended.trace("forward", x)
    targets = {a.target for a in bended.engine.record("forward").activations.values()}
    assert any(t.endswith("_pqmf_decode") for t in targets)  # kept whole, as torch.fx.wrap asks
    bended.bend(tb.Scale(tb.BendingParameter("gain", 2.0)), "encoder", fn="forward")
    scripted = bended.script()  # Iterable[int], a module as argument, *batch_size: TorchScript took none of them
    assert torch.allclose(scripted(x), bended(x), atol=1e-6)
    assert not torch.allclose(scripted(x), model(x), atol=1e-3)
    scripted.set_gain(1.0)
    assert torch.allclose(scripted(x), model(x), atol=1e-6)
    torch.jit.save(scripted, tmp_path / "rave.ts")
    assert torch.allclose(torch.jit.load(str(tmp_path / "rave.ts"))(x[:1]), model(x[:1]), atol=1e-6)
    program = torch.export.load(str(bended.export(tmp_path / "rave.pt2", "forward", x))).module()
    assert torch.allclose(program(x, gain=torch.tensor(2.0)), bended(x), atol=1e-6)
    assert model.pqmf.h.shape == (4, 1, 8) and _pqmf_decode.__annotations__["batch_size"] == Iterable[int]


class _WithPositions(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(3, 4)

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:  # ids: (tokens, 3), as Flux's img_ids
        return x + self.proj(ids)


def test_torch_export_keeps_inputs_without_a_batch_axis_as_they_are(tmp_path):
    model = seeded(_WithPositions())
    x, ids = torch.randn(2, 5, 4), torch.randn(5, 3)
    bended = tb.BendedModule(model)
    bended.trace("forward", x, ids)
    program = torch.export.load(str(bended.export(tmp_path / "p.pt2", "forward", x, ids))).module()
    assert torch.allclose(program(torch.ones(3, 5, 4), ids), model(torch.ones(3, 5, 4), ids), atol=1e-6)
