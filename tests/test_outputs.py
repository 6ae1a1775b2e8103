from collections import namedtuple

import pytest
import torch

from torchbend.apps.outputs import OutputError, save_output


def test_pt_files_load_with_weights_only(tmp_path):
    Out = namedtuple("Out", "mu var")
    save_output((Out(torch.ones(2), torch.zeros(2)), [torch.arange(3)]), tmp_path / "o.pt")
    loaded = torch.load(tmp_path / "o.pt", weights_only=True)
    assert loaded[0]["mu"].tolist() == [1.0, 1.0] and loaded[1][0].tolist() == [0, 1, 2]


def test_png_and_wrong_suffixes(tmp_path):
    from PIL import Image

    save_output((torch.rand(6, 1, 8, 8), "ignored"), tmp_path / "g.png")  # the first tensor of a tuple
    assert Image.open(tmp_path / "g.png").size == ((3 * 9 - 1) * 32, (2 * 9 - 1) * 32)  # 8 px -> 256 px tiles
    save_output(torch.rand(6, 1, 8, 8), tmp_path / "one.png", scale=1)
    assert Image.open(tmp_path / "one.png").size == (3 * 9 - 1, 2 * 9 - 1)
    save_output(torch.rand(1, 1, 300, 20), tmp_path / "big.png")
    assert Image.open(tmp_path / "big.png").size == (20, 300)  # already large: kept
    with pytest.raises(OutputError, match="scale is a whole number from 1 to 64"):
        save_output(torch.rand(1, 1, 8, 8), tmp_path / "g.png", scale=0)
    with pytest.raises(OutputError, match=r"\.png, \.wav, \.pt"):
        save_output(torch.rand(1), tmp_path / "g.jpg")
    with pytest.raises(OutputError, match="save it as .pt"):
        save_output(torch.rand(2, 2, 2, 2, 2), tmp_path / "g.png")
