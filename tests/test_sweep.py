import inspect
import subprocess
import sys

import pytest
import torch

import torchbend as tb
from conftest import ConvVAE, seeded
from torchbend.curves import keyframes, linear, sine


def bent_vae():
    bended = tb.BendedModule(seeded(ConvVAE()).eval())
    z = torch.randn(3, 8)
    bended.trace("decode", z=z)
    angle = tb.BendingParameter("angle", 10.0)
    bended.bend(tb.Rotate(angle), "decoder_net_convt0", fn="decode")
    return bended, z, angle


def test_sweep_in_value_order_and_never_sets_the_parameter():
    bended, z, angle = bent_vae()
    seen = []
    angle.subscribe(seen.append)
    outs = tb.sweep(bended, "decode", {"z": z}, "angle", [90.0, 0.0, 45.0], batch=2)  # one batch of 2, one of 1
    assert angle.value == 10.0 and not seen
    expected = []
    for value in (90.0, 0.0, 45.0):
        angle.value = value
        expected.append(bended.decode(z=z))
    assert len(outs) == 3
    for out, ref in zip(outs, expected):
        torch.testing.assert_close(out, ref)
    assert not torch.allclose(outs[0], outs[1])
    with pytest.raises(KeyError, match="in use: angle"):
        tb.sweep(bended, "decode", {"z": z}, "angel", [1.0])


def test_sweep_refuses_a_bad_value_by_position():
    bended, z, angle = bent_vae()
    with pytest.raises(tb.BendingError, match=r"values\[1\]: .*is a float"):
        tb.sweep(bended, "decode", {"z": z}, angle, [20.0, "x"])
    assert angle.value == 10.0


def test_curves():
    assert linear(0, 1, 3) == [0.0, 0.5, 1.0]
    assert sine(0, 2, 4) == pytest.approx([0, 2, 0, -2], abs=1e-9)
    assert keyframes([(0, 0), (1, 10), (2, 0)], 5) == [0, 5, 10, 5, 0]


def test_animate_gif_frames_and_size(tmp_path):
    from PIL import Image

    bended, z, _ = bent_vae()
    path = tb.animate(
        bended,
        "decode",
        {"z": z},
        "angle",
        linear(0, 90, 5),
        path=tmp_path / "a.gif",
        n_rows=1,
        scale=2,
        progress=False,
    )
    with Image.open(path) as gif:
        assert gif.n_frames == 5
        assert gif.size == (2 * (3 * 28 + 2), 2 * 28)  # three 28x28 digits in a row, 1-pixel gaps, doubled


def test_animate_mp4(tmp_path):
    av = pytest.importorskip("av")
    bended, z, _ = bent_vae()
    path = tb.animate(
        bended,
        "decode",
        {"z": z},
        "angle",
        [0, 45, 90, 135],
        path=tmp_path / "a.mp4",
        n_rows=1,
        scale=2,
        progress=False,
    )
    with av.open(str(path)) as video:
        frames = list(video.decode(video=0))
    assert len(frames) == 4 and (frames[0].width, frames[0].height) == (2 * (3 * 28 + 2), 2 * 28)


def test_animate_refuses_other_formats(tmp_path):
    bended, z, _ = bent_vae()
    with pytest.raises(ValueError, match=r"\.gif or \.mp4"):
        tb.animate(bended, "decode", {"z": z}, "angle", [0], path=tmp_path / "a.avi")


def test_strip_and_contact_sheet(tmp_path):
    bended, z, _ = bent_vae()
    outs = tb.sweep(bended, "decode", {"z": z}, "angle", [0, 90, 180])
    fig = tb.plot.strip(outs, titles=["0", "90", "180"], path=tmp_path / "s.png")
    assert [ax.get_title() for ax in fig.axes] == ["0", "90", "180"]
    fig = tb.plot.contact_sheet([outs, outs[:2]], row_titles=["a", "b"], column_titles=["0", "90", "180"])
    assert len(fig.axes) == 6 and fig.axes[3].get_ylabel() == "b"
    with pytest.raises(ValueError, match="2 row titles for 1 rows"):
        tb.plot.contact_sheet([outs], row_titles=["a", "b"])


def test_import_is_light():
    code = "import sys, torchbend; print(sorted({'matplotlib', 'sklearn', 'PIL', 'av'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stderr


def test_submodules_are_reachable_without_their_own_import():
    assert callable(tb.zoo.load_mnist_vae) and callable(tb.plot.strip) and callable(tb.datasets.mnist)
    assert callable(tb.cluster_features) and callable(tb.animate) and callable(tb.sweep)
    import torchbend.sweeping  # noqa: F401 - no submodule is named like a function of the package

    assert inspect.isfunction(tb.sweep) and tb.sweep is torchbend.sweeping.sweep
    assert tb.curves.linear(0, 1, 2) == [0.0, 1.0] and not callable(tb.curves)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        getattr(tb, "nothing")  # noqa: B009


@pytest.mark.parametrize("front_end", ["sweep", "animate", "render", "grid"])
def test_no_front_end_sets_the_parameter_it_sweeps(front_end, tmp_path):
    """tb.sweep, tb.animate, the CLI's render and grids render values without ever setting a live parameter."""
    from torchbend.apps.render import render_sweep

    bended, z, angle = bent_vae()
    changes = []
    angle.subscribe(changes.append)
    values = [0.0, 45.0, 90.0]
    if front_end == "sweep":
        outputs = tb.sweep(bended, "decode", {"z": z}, angle, values)
    elif front_end == "animate":
        tb.animate(bended, "decode", {"z": z}, angle, values, path=tmp_path / "a.gif", progress=False)
        outputs = tb.sweep(bended, "decode", {"z": z}, angle, values)
    elif front_end == "render":
        render_sweep(bended, "decode", {"z": z}, "angle", values, tmp_path / "r.gif")
        outputs = tb.sweep(bended, "decode", {"z": z}, angle, values)
    else:
        plain = tb.BendedModule(bended.module)
        points = tb.grid("decoder_net_convt0", {"rotate": tb.Rotate}, values=values)
        outputs = [r.output for r in tb.run_grid(plain.module, "decode", {"z": z}, points, progress=False)]
    assert changes == [] and angle.value == 10.0
    for value, output in zip(values, outputs):
        fresh = tb.BendedModule(bended.module)
        fresh.trace("decode", z=z)
        fresh.bend(tb.Rotate(value), "decoder_net_convt0", fn="decode")
        assert torch.allclose(output, fresh.decode(z), atol=1e-5)
