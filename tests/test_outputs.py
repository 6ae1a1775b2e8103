from collections import namedtuple

import pytest
import torch

from torchbend.outputs import OutputError, save_output


def test_pt_files_load_with_weights_only(tmp_path):
    Out = namedtuple("Out", "mu var")
    save_output((Out(torch.ones(2), torch.zeros(2)), [torch.arange(3)]), tmp_path / "o.pt")
    loaded = torch.load(tmp_path / "o.pt", weights_only=True)
    assert loaded[0]["mu"].tolist() == [1.0, 1.0] and loaded[1][0].tolist() == [0, 1, 2]


def test_png_and_wrong_suffixes(tmp_path):
    from PIL import Image

    save_output((torch.rand(6, 1, 8, 8), "ignored"), tmp_path / "g.png")  # the first tensor of a tuple
    assert Image.open(tmp_path / "g.png").size == (3 * 9 - 1, 2 * 9 - 1)
    with pytest.raises(OutputError, match=r"\.png, \.wav, \.pt"):
        save_output(torch.rand(1), tmp_path / "g.jpg")
    with pytest.raises(OutputError, match="save it as .pt"):
        save_output(torch.rand(2, 2, 2, 2, 2), tmp_path / "g.png")
