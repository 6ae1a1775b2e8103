import numpy as np
import pytest
import torch

from torchbend.plot import image_grid, plot_activation, plot_image_activations


def test_image_grid_places_each_image():
    images = torch.stack([torch.full((1, 2, 2), v) for v in (0.0, 0.25, 0.5, 1.0)])
    grid = image_grid(images, n_rows=2, pad=1)
    assert grid.shape == (5, 5)
    assert grid[0, 0] == 0.0 and grid[0, 3] == 0.25 and grid[3, 0] == 0.5 and grid[4, 4] == 1.0
    assert grid[2, 2] == 1.0  # padding is white
    wide = image_grid(torch.randn(3, 3, 4, 4) * 5)
    assert wide.shape == (4, 14, 3) and wide.min() >= 0 and wide.max() <= 1


def test_one_panel_per_batch_saved_as_png(tmp_path):
    batches = [torch.rand(16, 1, 28, 28) for _ in range(3)]
    fig = plot_image_activations(batches, n_rows=1, path=tmp_path / "out.png", titles=["a", "b", "c"])
    assert len(fig.axes) == 3
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["a", "b", "c"]
    shown = fig.axes[1].images[0].get_array()
    assert np.allclose(shown[:28, :28], batches[1][0, 0].numpy())
    assert (tmp_path / "out.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="titles"):
        plot_image_activations(batches, titles=["a"])


def test_plot_activation_maps_and_curves():
    maps = plot_activation(torch.randn(1, 6, 5, 5))
    assert maps.axes[0].images[0].get_array().shape == (11, 17)  # 2 rows x 3 columns of 5x5 maps
    curves = plot_activation(torch.randn(3, 50))
    assert len(curves.axes[0].lines) == 3
    with pytest.raises(ValueError, match="shape"):
        plot_activation(torch.randn(2, 2, 2, 2, 2))


def test_display_shows_a_png_once_and_returns_nothing(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    assert plot_image_activations(torch.rand(4, 1, 8, 8), display=True) is None
    assert len(shown) == 1 and shown[0].data[:4] == b"\x89PNG"


def test_empty_cells_are_background_and_the_figure_saves(tmp_path):
    fig = plot_activation(torch.rand(1, 3, 4, 4) + 5)  # 3 maps, one row: only the padding is background
    grid = fig.axes[0].images[0].get_array()
    assert grid.mask[:, 4].all() and not grid.mask[:, :4].any() and not grid.mask[:, 10:].any()
    fig = plot_activation(torch.rand(5, 4, 4))  # 5 maps on a 2 x 3 grid: one empty cell
    grid = fig.axes[0].images[0].get_array()
    assert grid.mask[5:, 10:].all() and not grid.mask[:4, :4].any()
    fig.savefig(tmp_path / "a.png")
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"


def test_batched_sequences_follow_the_layout():
    hidden = torch.randn(2, 50, 3)  # (B, T, C)
    fig = plot_activation(hidden, layout="BTC")
    lines = fig.axes[0].lines
    assert len(lines) == 3 and np.allclose(lines[1].get_ydata(), hidden[0, :, 1].numpy())
    fig = plot_activation(hidden.transpose(1, 2), layout="BCT")
    assert np.allclose(fig.axes[0].lines[2].get_ydata(), hidden[0, :, 2].numpy())
    with pytest.raises(ValueError, match="layout BTC needs a 3-d tensor"):
        plot_activation(torch.randn(50, 3), layout="BTC")
