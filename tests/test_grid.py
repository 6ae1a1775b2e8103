"""Grid sweeps: local (batched) and Ray backends give the single-call outputs, in order; failures stay local."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

import torchbend as tb
from conftest import ConvVAE, assert_unchanged, seeded, state_snapshot

TARGETS = ["decoder_net_convt0", "decoder.net.convt1.weight"]


def fragile(value):
    """A callback factory whose callback refuses one value when applied (at bend time)."""
    def shape(x, amount=value):
        if float(amount) > 2.5:
            raise RuntimeError("too loud")
        return x * amount

    return tb.Lambda(shape)


@pytest.fixture(scope="module")
def model():
    return seeded(ConvVAE()).eval()


@pytest.fixture(scope="module")
def inputs():
    return [{"z": torch.randn(3, 8, generator=torch.Generator().manual_seed(s))} for s in (1, 2)]


@pytest.fixture(scope="module")
def points():
    return tb.grid(TARGETS, {"scale": tb.Scale, "bias": tb.Bias}, [0.0, 0.5, 2.0], inputs=2)


def single(model, point, inputs):
    bended = tb.BendedModule(model)
    bended.trace("decode", **inputs[0])
    bended.bend(point.config)
    with torch.no_grad():
        return bended.decode(**inputs[point.input])


def test_grid_numbers_every_combination_in_order(points):
    assert len(points) == 2 * 2 * 3 * 2
    assert [p.index for p in points] == list(range(24))
    first, last = points[0].describe(), points[-1].describe()
    assert first == {"index": 0, "target": TARGETS[0], "callback": "scale", "value": 0.0, "input": 0}
    assert last == {"index": 23, "target": TARGETS[1], "callback": "bias", "value": 2.0, "input": 1}
    with pytest.raises(ValueError, match=r"callbacks\['mask'\]\(3.0\) fails"):
        tb.grid(TARGETS, {"mask": tb.Mask}, [3.0])


def test_local_grid_equals_single_calls_and_leaves_the_model(model, inputs, points):
    before = state_snapshot(model)
    results = tb.run_grid(model, "decode", inputs, points, progress=False)
    assert [r.point.index for r in results] == list(range(len(points)))
    for r in results:
        assert r.ok and r.path is None
        torch.testing.assert_close(r.output, single(model, r.point, inputs))
    assert not torch.allclose(results[0].output, results[2].output)
    assert_unchanged(model, before)


def test_a_failing_point_is_reported_and_the_others_complete(model, inputs, tmp_path):
    points = tb.grid("decoder_net_convt0", {"fragile": fragile}, [1.0, 3.0, 2.0])
    with pytest.warns(UserWarning, match=r"1 of 3 grid points failed: .*'value': 3.0.*too loud"):
        results = tb.run_grid(model, "decode", inputs[0], points, out_dir=tmp_path, progress=False)
    assert [r.ok for r in results] == [True, False, True]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [p["index"] for p in manifest["points"]] == [0, 1, 2]
    assert manifest["points"][1]["error"] and manifest["points"][1]["path"] is None
    saved = torch.load(tmp_path / manifest["points"][2]["path"], weights_only=True)
    torch.testing.assert_close(saved, single(model, points[2], inputs))


def test_bad_arguments_are_refused(model, inputs, points):
    with pytest.raises(ValueError, match="input sets"):
        tb.run_grid(model, "decode", inputs[0], points, progress=False)
    with pytest.raises(ValueError, match="backend"):
        tb.run_grid(model, "decode", inputs, points, backend="dask", progress=False)
    with pytest.raises(ValueError, match="save_as"):
        tb.run_grid(model, "decode", inputs, points, save_as=".jpg", progress=False)
    with pytest.raises(TypeError, match="nn.Module or a BendedModule"):
        tb.stream_grid(object(), "decode", inputs, points)  # at the call, before any result is asked for


def test_ray_grid_equals_local_in_order_and_writes_a_manifest(model, inputs, points, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    # workers import the test model's and callbacks' modules (conftest, this file) from the tests folder
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(Path(__file__).parent),
                                                                   os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        local = tb.run_grid(model, "decode", inputs, points, progress=False)
        remote = tb.run_grid(model, "decode", inputs, points, backend="ray", workers=2, progress=False)
        assert [r.point.index for r in remote] == list(range(len(points)))
        for a, b in zip(local, remote):
            assert b.ok
            torch.testing.assert_close(a.output, b.output)
        failing = tb.grid("decoder_net_convt0", {"fragile": fragile}, [3.0, 1.0])
        with pytest.warns(UserWarning, match="1 of 2 grid points failed"):
            written = tb.run_grid(model, "decode", inputs[0], failing, backend="ray", out_dir=tmp_path,
                                  progress=False)
        assert [r.ok for r in written] == [False, True]
        manifest = json.loads((tmp_path / "manifest.json").read_text())
        assert sorted(p["index"] for p in manifest["points"]) == [0, 1]
        assert (tmp_path / manifest["points"][1]["path"]).exists()
    finally:
        ray.shutdown()
