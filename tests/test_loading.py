import builtins

import pytest
import torch

import torchbend as tb
from conftest import Crafted, crafted_name
from torchbend.apps.cli import main
from torchbend.loading import LOADERS, ModelSpecError, load_model
from torchbend.zoo import MNISTVAE


def test_entry_points_and_registered_files(tmp_path, monkeypatch):
    vae = load_model()
    assert isinstance(vae, MNISTVAE) and not vae.training
    assert isinstance(load_model("torch.nn:Identity"), torch.nn.Identity)  # a class is a factory too
    monkeypatch.setitem(LOADERS, ".fake", lambda path: torch.nn.Linear(1, int(path.read_text())))
    (tmp_path / "m.fake").write_text("3")
    assert load_model(str(tmp_path / "m.fake")).out_features == 3


def test_bad_specs_are_named():
    with pytest.raises(ModelSpecError, match="closest: load_mnist_vae"):
        load_model("torchbend.zoo.mnist_vae:load_mnist_vea")
    with pytest.raises(ModelSpecError, match="cannot import 'no_such_pkg'"):
        load_model("no_such_pkg:f")
    with pytest.raises(ModelSpecError, match="not a torch.nn.Module"):
        load_model("math:pi")
    with pytest.raises(ModelSpecError, match="callable with no argument"):
        load_model("torch:zeros")
    with pytest.raises(ModelSpecError, match="no such file"):
        load_model("missing.pt2")


def test_a_pt2_with_a_crafted_module_name_is_refused_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.delattr(builtins, "tb_pwned_export", raising=False)
    model = Crafted(crafted_name("tb_pwned_export"))
    program = torch.export.export(model, (torch.randn(2, 3),))  # plain torch.export
    path = tmp_path / "crafted.pt2"
    torch.export.save(program, str(path))
    with pytest.raises(ModelSpecError, match="torch.fx would run as code .* load only files from people you trust"):
        tb.load(path)
    with pytest.raises(ModelSpecError, match="would run as code"):
        load_model(str(path))  # what the command line's inspect, apply, render and export use
    assert main(["inspect", str(path), "--method", "forward", "--inputs", "x=randn(2,3)"]) == 2
    assert not hasattr(builtins, "tb_pwned_export")
    torch.export.save(
        torch.export.export(torch.nn.Sequential(torch.nn.Linear(3, 3)), (torch.randn(2, 3),)),
        str(tmp_path / "plain.pt2"),
    )
    assert tb.load(tmp_path / "plain.pt2")(torch.randn(2, 3)).shape == (2, 3)  # "0.weight" is a plain name
