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
