"""Grid sweeps: local (batched) and Ray backends give the single-call outputs, in order; failures stay local."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

import torchbend as tb
from conftest import ConvVAE, assert_unchanged, seeded, state_snapshot
from torchbend.apps import grids

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


@pytest.mark.slow
def test_ray_grid_equals_local_in_order_and_writes_a_manifest(model, inputs, points, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    # workers import the test model's and callbacks' modules (conftest, this file) from the tests folder
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))
    )
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
            written = tb.run_grid(model, "decode", inputs[0], failing, backend="ray", out_dir=tmp_path, progress=False)
        assert [r.ok for r in written] == [False, True]
        manifest = json.loads((tmp_path / "manifest.json").read_text())
        assert sorted(p["index"] for p in manifest["points"]) == [0, 1]
        assert (tmp_path / manifest["points"][1]["path"]).exists()
    finally:
        ray.shutdown()


def manifest_of(folder):
    return json.loads((folder / "manifest.json").read_text())


def test_a_used_out_dir_is_refused_unless_overwrite_which_replaces_the_grid_files(model, inputs, tmp_path):
    first = tb.grid("decoder_net_convt0", {"scale": tb.Scale}, [0.0, 1.0, 2.0])
    tb.run_grid(model, "decode", inputs[0], first, out_dir=tmp_path, progress=False)
    (tmp_path / "notes.txt").write_text("mine")
    before = manifest_of(tmp_path)
    assert before["complete"] and len(before["grid"]) == 3 and len(before["run"]) == 32
    second = tb.grid("decoder_net_convt0", {"bias": tb.Bias}, [0.5, 1.5])
    with pytest.raises(ValueError, match="not empty; pass overwrite=True .* resume=True"):
        tb.run_grid(model, "decode", inputs[0], second, out_dir=tmp_path, progress=False)
    assert manifest_of(tmp_path) == before and (tmp_path / "00002.pt").exists()  # nothing touched
    results = tb.run_grid(model, "decode", inputs[0], second, out_dir=tmp_path, progress=False, overwrite=True)
    after = manifest_of(tmp_path)
    assert after["run"] != before["run"] and [p["callback"] for p in after["grid"]] == ["bias", "bias"]
    assert sorted(f.name for f in tmp_path.iterdir()) == ["00000.pt", "00001.pt", "manifest.json", "notes.txt"]
    torch.testing.assert_close(torch.load(tmp_path / "00001.pt", weights_only=True), single(model, second[1], inputs))
    assert [Path(r.path).name for r in results] == ["00000.pt", "00001.pt"]
    with pytest.raises(ValueError, match="not both"):
        tb.run_grid(model, "decode", inputs[0], second, out_dir=tmp_path, overwrite=True, resume=True)


def test_the_manifest_follows_each_result_and_resume_renders_only_the_rest(model, inputs, tmp_path, monkeypatch):
    points = tb.grid("decoder_net_convt0", {"scale": tb.Scale}, [0.0, 0.5, 1.0, 2.0])
    stream = tb.stream_grid(model, "decode", inputs[0], points, out_dir=tmp_path, batch=1, progress=False)
    assert manifest_of(tmp_path)["points"] == []  # written at the call: the folder is this grid's
    for _ in range(2):
        next(stream)
    stream.close()  # the run stops (killed) after two points
    stopped = manifest_of(tmp_path)
    assert not stopped["complete"] and [p["index"] for p in stopped["points"]] == [0, 1]
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".tmp")]
    rendered = []
    run = grids.Renderer.run
    monkeypatch.setattr(
        grids.Renderer, "run", lambda self, pts: rendered.extend(p.index for p in pts) or run(self, pts)
    )
    results = tb.run_grid(model, "decode", inputs[0], points, out_dir=tmp_path, batch=1, progress=False, resume=True)
    assert rendered == [2, 3]
    assert [r.point.index for r in results] == [0, 1, 2, 3] and all(r.ok for r in results)
    for r in results:
        torch.testing.assert_close(torch.load(r.path, weights_only=True), single(model, r.point, inputs))
    done = manifest_of(tmp_path)
    assert done["complete"] and done["run"] == stopped["run"] and [p["index"] for p in done["points"]] == [0, 1, 2, 3]
    other = tb.grid("decoder_net_convt0", {"scale": tb.Scale}, [0.0, 0.5, 1.0, 3.0])
    with pytest.raises(ValueError, match="describes another grid .*grid differ"):
        tb.run_grid(model, "decode", inputs[0], other, out_dir=tmp_path, progress=False, resume=True)
    with pytest.raises(ValueError, match="no manifest.json"):
        tb.run_grid(model, "decode", inputs[0], points, out_dir=tmp_path / "empty", progress=False, resume=True)


def test_a_manifest_write_that_fails_leaves_the_old_manifest_whole(model, inputs, tmp_path, monkeypatch):
    points = tb.grid("decoder_net_convt0", {"scale": tb.Scale}, [0.0, 1.0])
    stream = tb.stream_grid(model, "decode", inputs[0], points, out_dir=tmp_path, batch=1, progress=False)
    text = (tmp_path / "manifest.json").read_text()

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(grids.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        next(stream)
    assert (tmp_path / "manifest.json").read_text() == text
    assert sorted(f.name for f in tmp_path.iterdir()) == ["00000.pt", "manifest.json"]
