import pytest
import torch
from torch import nn

import torchbend as tb
from torchbend import clustering


class Planted(nn.Module):
    """Channels 0, 2, 4 follow one spatial pattern and 1, 3, 5 another, at different gains and offsets."""

    def __init__(self) -> None:
        super().__init__()
        self.mix = nn.Conv2d(2, 6, 1)
        with torch.no_grad():
            self.mix.weight.zero_()
            for c, gain in enumerate([1.0, 2.0, 0.5, 3.0, 4.0, 0.7]):
                self.mix.weight[c, c % 2] = gain
            self.mix.bias.copy_(torch.arange(6.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(x) * 1.0


def planted():
    bended = tb.BendedModule(Planted())
    x = torch.randn(4, 2, 6, 6)
    bended.trace("forward", x=x)
    return bended, x


def test_separates_planted_groups_and_is_deterministic():
    clustering._CACHE.clear()
    bended, x = planted()
    groups = tb.cluster_features(bended, "mix", inputs={"x": x}, k=2, seed=0)
    assert sorted(map(sorted, groups.values())) == [[0, 2, 4], [1, 3, 5]]
    assert list(groups) == ["cluster_0", "cluster_1"] and groups["cluster_0"] == [0, 2, 4]
    assert groups["cluster_0"].name == "cluster_0"
    clustering._CACHE.clear()
    again = tb.cluster_features(bended, "mix", inputs={"x": x}, k=2, seed=0)
    assert again.labels == groups.labels
    torch.testing.assert_close(again.mean_maps, groups.mean_maps)
    assert groups.mean_maps.shape == (2, 6, 6)


def test_cache_in_memory_and_on_disk(tmp_path):
    clustering._CACHE.clear()
    bended, x = planted()
    first = tb.cluster_features(bended, "mix", inputs={"x": x}, k=2, cache_dir=tmp_path)
    assert tb.cluster_features(bended, "mix", inputs={"x": x}, k=2, cache_dir=tmp_path) is first
    assert len(list(tmp_path.glob("*.json"))) == 1
    clustering._CACHE.clear()
    loaded = tb.cluster_features(bended, "mix", inputs={"x": x}, k=2, cache_dir=tmp_path)
    assert loaded is not first and loaded.labels == first.labels
    other = tb.cluster_features(bended, "mix", inputs={"x": x + 1}, k=2, cache_dir=tmp_path)
    assert other is not loaded  # other inputs, another entry
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_group_as_channels_bends_only_that_group_and_saves_its_name(tmp_path):
    bended, x = planted()
    groups = tb.cluster_features(bended, "mix", inputs={"x": x}, k=2)
    select = tb.Select(tb.Ablate(), groups["cluster_1"])
    bended.bend(select, "mix", fn="forward")
    out = bended(x=x)
    plain = bended.module(x)
    assert out[:, [1, 3, 5]].abs().sum() == 0 and torch.equal(out[:, [0, 2, 4]], plain[:, [0, 2, 4]])
    config = tb.BendingConfig((select, "forward:mix"))
    config.save(tmp_path / "c.json")
    ((back, _),) = list(tb.BendingConfig.load(tmp_path / "c.json"))
    assert back.group == "cluster_1" and back.channels == [1, 3, 5]


def test_plot_and_errors(tmp_path):
    bended, x = planted()
    groups = tb.cluster_features(bended, "mix", inputs={"x": x}, k=2)
    fig = groups.plot(path=tmp_path / "c.png")
    assert len(fig.axes) == 2 and (tmp_path / "c.png").stat().st_size > 0
    with pytest.raises(ValueError, match="k=7 is more than the 6 channels"):
        tb.cluster_features(bended, "mix", inputs={"x": x}, k=7)
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        tb.cluster_features(bended, "mix", inputs={"x": x}, k=0)
    with pytest.raises(ValueError, match="takes one activation"):
        tb.cluster_features(bended, ".*", inputs={"x": x}, k=2)
    with pytest.raises(KeyError, match="groups: cluster_0, cluster_1"):
        groups["cluster_9"]
