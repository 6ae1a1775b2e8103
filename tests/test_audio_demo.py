import pytest
import torch

pytest.importorskip("soundfile")
pytest.importorskip("matplotlib")

from torchbend.audio import demo  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return demo.run_audio_demo(tmp_path_factory.mktemp("audio-demo"), seed=0)[1]


def test_every_bend_changes_the_reconstruction(results):
    clips, reconstruction = results["audio_00_reconstruction"]
    assert reconstruction.shape == clips.shape
    for name in ("audio_01_weight_mask", "audio_02_weight_scale", "audio_03_activation_threshold"):
        (bent,) = results[name]
        assert bent.shape == reconstruction.shape and not torch.allclose(bent, reconstruction, atol=1e-3), name


def test_interpolation_mixes_go_from_one_clip_to_the_other(results):
    _, reconstruction = results["audio_00_reconstruction"]
    mixes = results["audio_04_interpolation"]
    assert len(mixes) == 3
    distance_to_first = [(m[0] - reconstruction[0]).norm().item() for m in mixes]
    assert distance_to_first == sorted(distance_to_first)
