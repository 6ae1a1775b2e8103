import pytest
import torch

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
