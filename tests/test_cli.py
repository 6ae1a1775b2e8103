"""The `torchbend` command, end to end on the shipped MNIST VAE (in-process, except one subprocess run)."""

import subprocess
import sys
import wave

import pytest
import torch

import torchbend as tb
from torchbend.apps import cli
from torchbend.zoo import load_mnist_vae

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    """A config on the shipped VAE: a live mask on one weight and a live scale on one activation."""
    bended = tb.BendedModule(load_mnist_vae())
    bended.trace("decode", z=torch.randn(2, 64))
    keep = tb.BendingParameter("keep", 0.5, range=(0.0, 1.0))
    bended.bend(tb.Mask(keep, seed=0), "decoder.net.convt1.weight")
    bended.bend(tb.Scale(tb.BendingParameter("gain", 1.5, range=(0.0, 4.0))), "decoder_net_relu0", fn="decode")
    path = tmp_path_factory.mktemp("cfg") / "glitch.json"
    bended.bending_config().save(path)
    return path


def test_version_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "torchbend", "--version"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"torchbend {tb.__version__}"


def test_every_subcommand_has_examples_in_its_help(capsys):
    for command in ("inspect", "apply", "render", "export", "demo"):
        with pytest.raises(SystemExit) as exit_:
            cli.main([command, "--help"])
        assert exit_.value.code == 0
        assert f"torchbend {command}" in capsys.readouterr().out.split("examples:")[1]


def test_inspect_lists_weights_and_activations_by_scope(capsys):
    assert cli.main(["inspect", "--inputs", "z=randn(3,64)"]) == 0
    out = capsys.readouterr().out
    assert "decoder.net.convt0.weight  (128, 64, 5, 5)" in out
    assert "decoder.net/" in out and "(3, 64, 4, 4)" in out  # shapes follow the given inputs


def test_apply_writes_the_bent_output_as_png_and_pt(config, tmp_path):
    assert (
        cli.main(["apply", "default", str(config), "--inputs", "z=randn(4,64)", "--out", str(tmp_path / "bent.pt")])
        == 0
    )
    saved = torch.load(tmp_path / "bent.pt", weights_only=True)
    z = torch.randn(4, 64, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(saved, load_mnist_vae().decode(z))
    other = tb.BendedModule(load_mnist_vae())
    other.trace("decode", z=z)
    other.bend(tb.BendingConfig.load(config))
    assert torch.allclose(saved, other.decode(z), atol=1e-6)
    assert cli.main(["apply", "default", str(config), "--set", "gain=0", "--out", str(tmp_path / "bent.png")]) == 0
    from PIL import Image

    side = (4 * 29 - 1) * 10  # 16 digits, 4 by 4, each pixel 10 x 10
    assert Image.open(tmp_path / "bent.png").size == (side, side)  # tiles of 280 >= 256 pixels
    assert cli.main(["apply", "default", str(config), "--scale", "2", "--out", str(tmp_path / "small.png")]) == 0
    small = Image.open(tmp_path / "small.png")
    assert small.size == ((4 * 29 - 1) * 2,) * 2
    assert small.getpixel((0, 0)) == small.getpixel((1, 1))  # nearest neighbour: sharp 2 x 2 squares
    assert cli.main(["apply", "default", str(config), "--scale", "0", "--out", str(tmp_path / "x.png")]) == 2


def test_apply_writes_audio_as_wav(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "soundfile", None)  # the standard-library writer
    from torchbend.apps.outputs import save_output

    save_output(torch.rand(2, 1, 100) * 2 - 1, tmp_path / "a.wav", sample_rate=8000)
    with wave.open(str(tmp_path / "a.wav")) as read:
        assert (read.getnchannels(), read.getframerate(), read.getnframes()) == (1, 8000, 200)


def test_render_writes_a_strip_and_an_animation(config, tmp_path):
    from PIL import Image

    assert (
        cli.main(
            [
                "render",
                "default",
                str(config),
                "--param",
                "keep",
                "--values",
                "0",
                "0.5",
                "1",
                "--out",
                str(tmp_path / "sweep.gif"),
            ]
        )
        == 0
    )
    gif = Image.open(tmp_path / "sweep.gif")
    assert gif.n_frames == 3
    assert (
        cli.main(
            [
                "render",
                "default",
                str(config),
                "--param",
                "keep",
                "--values",
                "0",
                "1",
                "--out",
                str(tmp_path / "sweep.png"),
            ]
        )
        == 0
    )
    assert Image.open(tmp_path / "sweep.png").size[1] > Image.open(tmp_path / "sweep.png").size[0] / 10


def test_render_names_the_parameters_it_knows(config, tmp_path, capsys):
    assert (
        cli.main(
            ["render", "default", str(config), "--param", "kep", "--values", "0", "--out", str(tmp_path / "s.png")]
        )
        == 2
    )
    assert "keep, gain" in capsys.readouterr().err


def test_export_script_and_pt2(config, tmp_path):
    assert cli.main(["export", "default", str(config), "--to", "script", "--out", str(tmp_path / "b.ts")]) == 0
    scripted = torch.jit.load(str(tmp_path / "b.ts"))
    assert scripted.get_keep() == 0.5
    assert cli.main(["export", "default", str(config), "--to", "pt2", "--out", str(tmp_path / "b.pt2")]) == 0
    program = torch.export.load(str(tmp_path / "b.pt2")).module()
    z = torch.randn(5, 64)
    assert torch.allclose(program(z, keep=torch.tensor(0.5), gain=torch.tensor(1.5)), scripted.decode(z), atol=1e-5)


def test_bad_inputs_and_models_are_clear_errors(config, capsys):
    assert cli.main(["inspect", "--inputs", "z=randm(3,64)"]) == 2
    assert "unknown function 'randm'" in capsys.readouterr().err
    assert cli.main(["inspect", "torchbend.zoo.mnist_vae:load_mnist_vea"]) == 2
    assert "load_mnist_vae" in capsys.readouterr().err  # the closest names are listed
    assert cli.main(["inspect", "model.onnx"]) == 2
    assert "module:factory" in capsys.readouterr().err


def test_a_missing_extra_names_the_pip_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert cli.main(["demo", "--out", str(tmp_path)]) == 2
    assert "pip install 'torchbend[demo]'" in capsys.readouterr().err


def test_demo_command_passes_its_options(monkeypatch, tmp_path, capsys):
    calls = []
    monkeypatch.setattr("torchbend.apps.demo.run_demo", lambda out, seed: calls.append((out, seed)))
    assert cli.main(["demo", "--out", str(tmp_path), "--seed", "3"]) == 0
    assert calls == [(tmp_path, 3)]
    assert str(tmp_path / "index.html") in capsys.readouterr().out


def test_unknown_command_exits_with_usage(capsys):
    with pytest.raises(SystemExit):
        cli.main(["dmeo"])
    assert "invalid choice" in capsys.readouterr().err


def studio_args(monkeypatch, argv):
    from torchbend.apps.studio import command

    seen = {}
    monkeypatch.setattr(command, "run", lambda args: seen.setdefault("args", args) and 0)
    assert cli.main(["studio", *argv]) == 0
    return seen["args"]


def make_inputs():
    return {"input": torch.ones(1, 5)}


def test_studio_command_defaults_to_the_vae_decoder(monkeypatch, tmp_path):
    from torchbend.apps.studio import command

    args = studio_args(monkeypatch, ["--port", "0", "--out", str(tmp_path)])
    assert (args.host, args.port, args.config) == ("127.0.0.1", 0, None)
    bended, fn, inputs = command.traced(args)
    assert fn == "decode" and list(inputs) == ["z"] and tuple(inputs["z"].shape) == (16, 64)
    with pytest.raises(SystemExit, match="module:name"):
        command.entry_point("no_colon")


@pytest.mark.parametrize(
    "argv",
    [
        ["torch.nn:Identity", "--method", "forward", "--inputs", "input=randn(2,3)"],  # as the other subcommands
        ["torch.nn:Identity", "--inputs", "input=randn(2,3)", "--seed", "4"],
        ["--model", "torch.nn:Identity", "--fn", "forward", "--shape", "2,3"],  # the older flags
        ["--model", "torch.nn:Identity", "--shape", "2,3"],
    ],
)
def test_studio_takes_model_method_and_inputs_like_the_other_subcommands(monkeypatch, argv):
    from torchbend.apps.studio import command

    bended, fn, inputs = command.traced(studio_args(monkeypatch, argv))
    assert fn == "forward" and list(inputs) == ["input"] and tuple(inputs["input"].shape) == (2, 3)
    assert isinstance(bended.module, torch.nn.Identity) and "forward" in bended.traced_methods


def test_studio_keeps_inputs_from_a_function_and_refuses_mixed_spellings(monkeypatch, capsys):
    from torchbend.apps.studio import command

    args = studio_args(monkeypatch, ["torch.nn:Identity", "--inputs", f"{__name__}:make_inputs"])
    assert torch.equal(command.traced(args)[2]["input"], torch.ones(1, 5))
    monkeypatch.setattr(command, "run", lambda args: command.traced(args) and 0)  # traces, never serves
    for argv, message in [
        (["torch.nn:Identity", "--inputs", "input=randn(2)", "--shape", "2"], "not both"),
        (["torch.nn:Linear", "--model", "torch.nn:Identity", "--shape", "2"], "give the model once"),
        (["torch.nn:Identity"], "give the inputs of forward"),
        (["torch.nn:Identity", "--inputs", "x=randn(2)"], "unexpected keyword argument 'x'"),
    ]:
        assert cli.main(["studio", "--port", "0", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("torchbend: error: ") and err.count("\n") == 1 and message in err, err


def test_studio_help_has_a_description_and_examples(capsys):
    with pytest.raises(SystemExit):
        cli.main(["studio", "--help"])
    out = capsys.readouterr().out
    assert "local web page" in out and "examples:" in out and "torchbend studio default --config" in out
    assert "--method" in out and "--inputs" in out and "older spelling of --method" in out


def rave_like() -> torch.nn.Module:
    from conftest import seeded
    from corpus import RaveLikeDecoder

    return seeded(RaveLikeDecoder(batch=4))


def test_export_nntilde_reads_channels_and_ratios_from_the_trace(tmp_path):
    pytest.importorskip("nn_tilde")
    bended = tb.BendedModule(rave_like())
    bended.trace("decode", torch.randn(2, 4, 6))
    bended.bend(tb.Scale(tb.BendingParameter("gain", 1.0, range=(0.0, 4.0))), "up.weight")
    bended.bending_config().save(tmp_path / "c.json")
    assert (
        cli.main(
            [
                "export",
                f"{__name__}:rave_like",
                str(tmp_path / "c.json"),
                "--method",
                "decode",
                "--inputs",
                "z=randn(2,4,6)",
                "--to",
                "nntilde",
                "--out",
                str(tmp_path / "b.ts"),
            ]
        )
        == 0
    )
    loaded = torch.jit.load(str(tmp_path / "b.ts"))
    out = bended.decode(torch.randn(2, 4, 6))
    assert loaded.decode_params.tolist() == [4, out.shape[-1] // 6, out.shape[1], 1]
    assert loaded.get_attributes() == ["none", "gain"] and loaded.bending_parameters()[0]["name"] == "gain"


def test_inputs_are_checked_against_the_method(capsys):
    assert cli.main(["inspect", "--inputs", "x=randn(2,64)"]) == 2
    assert "decode(z" in capsys.readouterr().err
    assert cli.main(["inspect", "--method", "decod"]) == 2
    assert "no method 'decod'; closest: decode" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["inspect", "--inputs", "z=randn(-1,64)"], "a size is a whole number >= 0, got -1"),
        (["inspect", "--inputs", "z=randn(100000,100000)"], "too large; one input holds at most"),
        (["inspect", "--inputs", "z=linspace(0,1,1e12)"], "too large"),
        (["studio", "--model", "torch.nn:Identity", "--shape", "16,abc"], "'--shape 16,abc': the arguments must be"),
        (["studio", "--model", "torch.nn:Identity", "--shape", "100000,100000"], "too large"),
        (
            ["apply", "default", "CONFIG", "--set", "keep=abc", "--out", "x.pt"],
            "--set NAME=VALUE: 'abc' is not a number",
        ),
        (["apply", "default", "CONFIG", "--set", "keep=5", "--out", "x.pt"], "--set keep=5: "),
    ],
)
def test_bad_sizes_and_values_are_one_error_line(config, tmp_path, capsys, argv, message):
    argv = [str(config) if a == "CONFIG" else str(tmp_path / a) if a == "x.pt" else a for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("torchbend: error: ") and err.count("\n") == 1 and message in err


def test_every_subcommand_takes_a_torchscript_file(tmp_path, capsys, monkeypatch):
    from torchbend.zoo import make_streaming_model

    class Audio(torch.nn.Module):  # a streaming model that says its sample rate, saved without its code
        def __init__(self) -> None:
            super().__init__()
            self.model = make_streaming_model()
            self.sample_rate = 8000

        @torch.jit.export
        def encode(self, x: torch.Tensor) -> torch.Tensor:
            return self.model.encode(x)

        @torch.jit.export
        def decode(self, z: torch.Tensor) -> torch.Tensor:
            return self.model.decode(z)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model(x)

    path = tmp_path / "model.ts"
    torch.jit.save(torch.jit.script(Audio()), str(path))
    model, inputs = str(path), ["--method", "decode", "--inputs", "z=randn(2,4,8)"]
    assert cli.main(["inspect", model, *inputs]) == 0
    out = capsys.readouterr().out
    assert "model.decoder.2.weight" in out and "model.decoder.2/" in out and "(2, 8, 32)" in out
    bended = tb.load(path)
    bended.trace("decode", torch.randn(2, 4, 8))
    gain = tb.BendingParameter("gain", 0.5, range=(0.0, 2.0))
    bended.bend(tb.Scale(gain), "model.decoder.6.conv.weight")
    bended.bend(tb.Affine(scale=gain, bias=0.1), "decode:model.decoder.7:tanh")
    bended.bending_config().save(tmp_path / "c.json")
    config = str(tmp_path / "c.json")

    assert cli.main(["apply", model, config, *inputs, "--set", "gain=2", "--out", str(tmp_path / "bent.pt")]) == 0
    z = torch.randn(2, 4, 8, generator=torch.Generator().manual_seed(0))
    fresh = tb.load(path)
    fresh.trace("decode", z)
    fresh.bend(tb.BendingConfig.load(config))
    fresh.update("gain", 2.0)
    torch.testing.assert_close(torch.load(tmp_path / "bent.pt", weights_only=True), fresh.decode(z))
    assert (
        cli.main(
            [
                "render",
                model,
                config,
                *inputs,
                "--param",
                "gain",
                "--values",
                "0",
                "1",
                "--out",
                str(tmp_path / "sweep.png"),
            ]
        )
        == 0
    )
    assert (tmp_path / "sweep.png").stat().st_size > 0
    assert cli.main(["export", model, config, *inputs, "--to", "script", "--out", str(tmp_path / "b.ts")]) == 0
    exported = torch.jit.load(str(tmp_path / "b.ts"))
    assert exported.get_gain() == 0.5 and exported.sample_rate == 8000  # the whole module, bent
    assert cli.main(["export", model, config, *inputs, "--to", "pt2", "--out", str(tmp_path / "b.pt2")]) == 2
    assert "torch.export needs a Python module" in capsys.readouterr().err

    pytest.importorskip("soundfile")
    from torchbend.audio import read, write

    source = write(tmp_path / "in.wav", torch.sin(torch.linspace(0, 300, 3000))[None] * 0.5, 8000)
    assert (
        cli.main(["audio", str(source), "--model", model, "--config", config, "--out", str(tmp_path / "out.wav")]) == 0
    )
    sound, rate = read(tmp_path / "out.wav")
    assert rate == 8000 and sound.shape == (1, 3000)
