import pytest

from torchbend import cli


def test_demo_command_passes_its_options(monkeypatch, tmp_path, capsys):
    calls = []
    monkeypatch.setattr("torchbend.demo.run_demo", lambda out, seed: calls.append((out, seed)))
    assert cli.main(["demo", "--out", str(tmp_path), "--seed", "3"]) == 0
    assert calls == [(tmp_path, 3)]
    assert str(tmp_path / "index.html") in capsys.readouterr().out


def test_unknown_command_exits_with_usage(capsys):
    with pytest.raises(SystemExit):
        cli.main(["dmeo"])
    assert "invalid choice" in capsys.readouterr().err


def test_studio_command_defaults_to_the_vae_decoder(monkeypatch, tmp_path):
    import argparse

    from torchbend.studio import command

    seen = {}
    monkeypatch.setattr(command, "run", lambda args: seen.setdefault("args", args) and 0)
    assert cli.main(["studio", "--port", "0", "--out", str(tmp_path)]) == 0
    args = seen["args"]
    assert (args.host, args.port, args.model, args.config) == ("127.0.0.1", 0, None, None)
    model, fn, inputs = command.model_and_inputs(args)
    assert fn == "decode" and list(inputs) == ["z"] and tuple(inputs["z"].shape) == (16, 64)
    custom = argparse.Namespace(model="torch.nn:Identity", fn=None, shape="2,3", inputs=None, seed=0)
    model, fn, inputs = command.model_and_inputs(custom)
    assert fn == "forward" and tuple(inputs["input"].shape) == (2, 3)
    with pytest.raises(SystemExit, match="module:name"):
        command.entry_point("no_colon")
