"""The command line's bends and user mistakes: `--bend`, `--save`, targets outside what runs, one-line errors."""

import pytest
import torch

import torchbend as tb
from torchbend.apps import cli
from torchbend.apps.bend_spec import parse_bends
from torchbend.zoo import load_mnist_vae

pytestmark = pytest.mark.filterwarnings("ignore")


def test_bend_round_trips_through_save_and_apply(tmp_path):
    bends = [
        "--bend",
        "Mask(prob=param('keep', 0.3, 0, 1))@decoder.net.convt1.weight",
        "--bend",
        "Scale(-1)@decode:decoder_net_convt1",
    ]
    assert (
        cli.main(
            ["apply", "default", *bends, "--save", str(tmp_path / "glitch.json"), "--out", str(tmp_path / "direct.pt")]
        )
        == 0
    )
    assert cli.main(["apply", "default", str(tmp_path / "glitch.json"), "--out", str(tmp_path / "saved.pt")]) == 0
    direct, saved = (torch.load(tmp_path / f"{n}.pt", weights_only=True) for n in ("direct", "saved"))
    z = torch.randn(16, 64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(direct, saved) and not torch.allclose(direct, load_mnist_vae().decode(z))
    config = tb.BendingConfig.load(tmp_path / "glitch.json")
    assert [targets for _, targets in config] == [["decoder.net.convt1.weight"], ["decode:decoder_net_convt1"]]
    assert config.parameters["keep"].value == 0.3 and config.parameters["keep"].range == (0, 1)
    # the live parameter is reachable by --set, as for a config file
    assert (
        cli.main(
            ["apply", "default", str(tmp_path / "glitch.json"), "--set", "keep=1", "--out", str(tmp_path / "kept.pt")]
        )
        == 0
    )
    assert not torch.equal(torch.load(tmp_path / "kept.pt", weights_only=True), saved)


def test_bend_is_parsed_as_literals_with_the_checks_of_config_files():
    config = parse_bends(["Select(Bias(1.0), channels=[0])@decode:z", "Scale(-1)@a@scope#0"])
    (select, first), (scale, second) = config
    assert type(select).__name__ == "Select" and select.channels == [0] and first == ["decode:z"]
    assert scale.scale == -1 and second == ["a@scope#0"]  # the first '@' after the call; the rest is the target
    for bad, says in [
        ("Mask(prob=2)@x", "prob must be"),
        ("Nope(1)@x", "unknown callback 'Nope'"),
        ("Scale(__import__('os').getcwd())@x", "not a literal"),
        ("Scale(2)", "CALLBACK(ARGS)@TARGET"),
        ("Scale(1 + 1)@x", "not a literal"),
        ("Scale(2, 3, 4)@x", "at most 1 argument"),
        ("Scale(param('g', 1.0, 0))@x", "both LOW and HIGH"),
    ]:
        with pytest.raises(tb.ConfigError, match="--bend") as error:
            parse_bends([bad])
        assert says in str(error.value)


def test_a_target_outside_the_method_run_is_an_error_not_a_no_op(tmp_path, capsys):
    assert (
        cli.main(
            [
                "apply",
                "default",
                "--method",
                "forward",
                "--inputs",
                "x=rand(2,1,28,28)",
                "--bend",
                "Scale(-1)@decode:decoder_net_convt1",
                "--out",
                str(tmp_path / "x.pt"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "'decode:decoder_net_convt1' is in decode" in err and "runs forward" in err and "--method decode" in err
    assert not (tmp_path / "x.pt").exists()


def test_a_weight_the_method_never_reads_is_an_error_not_a_no_op(tmp_path, capsys):
    out = ["--out", str(tmp_path / "x.pt")]
    assert cli.main(["apply", "default", "--bend", "Scale(2.0)@encoder.net.0.weight", *out]) == 2  # runs decode
    assert "'encoder.net.0.weight' is a weight that decode never reads" in capsys.readouterr().err
    assert (
        cli.main(
            [
                "apply",
                "default",
                "--method",
                "forward",
                "--inputs",
                "x=rand(2,1,28,28)",
                "--bend",
                "Scale(2.0)@encoder.net.0.weight",
                *out,
            ]
        )
        == 0
    )


def test_bend_config_on_one_method_refuses_targets_of_another():
    bended = tb.BendedModule(load_mnist_vae())
    bended.trace("decode", z=torch.randn(2, 64))
    bended.trace("forward", torch.rand(2, 1, 28, 28))
    config = tb.BendingConfig((tb.Scale(2), "decode:decoder_net_convt1"))
    with pytest.raises(tb.ConfigError, match="names method 'decode', but fn='forward'"):
        bended.bend(config, fn="forward")
    assert not bended.engine.bends
    assert len(bended.bend(config, fn="decode").bends) == 1


@pytest.mark.parametrize(
    "argv, says",
    [
        (["apply", "default", "{config}", "--set", "keep=5", "--out", "{tmp}/x.pt"], "outside its range"),
        (["apply", "default", "{config}", "--set", "nope=1", "--out", "{tmp}/x.pt"], "nope"),
        (["apply", "default", "--inputs", "z=randn(16,", "--out", "{tmp}/x.pt"], "z=randn(16,"),
        (["apply", "default", "--inputs", "x=randn(16,64)", "--out", "{tmp}/x.pt"], "unexpected keyword argument 'x'"),
        (["apply", "default", "{tmp}/missing.json", "--out", "{tmp}/x.pt"], "missing.json"),
        (["apply", "default", "--bend", "Mask(2)@decoder.net.convt1.weight", "--out", "{tmp}/x.pt"], "prob must be"),
        (["apply", "default", "--bend", "Mask(0.5)@decoder.nope", "--out", "{tmp}/x.pt"], "decoder.nope"),
        (["apply", "default"], "--out"),
        (["export", "default", "{tmp}/missing.json", "--to", "script", "--out", "{tmp}/x.ts"], "missing.json"),
    ],
)
def test_a_user_mistake_is_one_line_on_stderr_and_exit_code_2(argv, says, tmp_path, capsys):
    config = tmp_path / "glitch.json"
    tb.BendingConfig(
        (tb.Mask(tb.BendingParameter("keep", 0.5, range=(0, 1)), seed=0), "decoder.net.convt1.weight")
    ).save(config)
    argv = [a.format(config=config, tmp=tmp_path) for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("torchbend: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert says in err


def test_inputs_of_the_wrong_shape_name_the_shape_not_a_leaf(capsys):
    assert cli.main(["inspect", "--inputs", "z=randn(16,32)"]) == 2
    err = capsys.readouterr().err
    assert "(16, 32)" in err and "leaves=" not in err and "inputs" in err
