"""The Panel page bound to a StudioState, without a server or a browser (as in a notebook)."""

import pytest

import torchbend as tb

pn = pytest.importorskip("panel", reason="the studio needs Panel: pip install torchbend[studio]")

from torchbend.studio.app import StudioPage  # noqa: E402
from torchbend.studio.state import StudioState  # noqa: E402


@pytest.fixture
def page(vae, z, tmp_path):
    state = StudioState(tb.BendedModule(vae), "decode", {"z": z}, out_dir=tmp_path)
    page = StudioPage(state)
    yield page
    state.close()


def test_inline_studio_is_a_panel_layout(vae, z):
    layout = tb.studio(tb.BendedModule(vae), "decode", {"z": z}, inline=True)
    assert isinstance(layout, pn.layout.Panel)


def test_form_adds_a_bend_and_its_slider_drives_the_parameter(page):
    state = page.state
    state.wait()
    assert 'class="tb-image"' in page.image.object
    page.search.value_input = "convt0"
    assert set(page.table.value["name"]) == {"decoder_net_convt0", "decoder.net.convt0.weight",
                                             "decoder.net.convt0.bias"}
    page.table.selection = [1]                      # clicking a row fills the targets
    assert page.targets.value == page.table.value.iloc[1]["name"]
    assert page.target_info.object.startswith("1 match(es)")
    page.targets.value = "decoder_net_convt0"
    page.callback.value = "Affine"
    assert set(page.field_widgets) == {"scale", "bias"}
    page.field_widgets["scale"][1].value = 0.5
    page.field_widgets["bias"][2].value = False      # bias stays a plain number
    page._on_add(None)
    assert page.message.object == "added Affine on decode:decoder_net_convt0"
    assert list(state.parameters) == ["affine_scale"]
    slider = page.param_list.objects[0]
    assert (slider.label, slider.value, slider.start, slider.end) == ("affine_scale", 0.5, 0.0, 2.0)
    slider.value = 0.25
    assert state.parameters["affine_scale"].value == 0.25
    assert len(page.bend_list.objects) == 1
    page._act(lambda: state.remove_bend(0) or "removed")
    assert page.param_list.objects[0].object == "no live parameters"


def test_errors_are_shown_not_raised(page):
    page.targets.value = "no_such_layer"
    page._on_add(None)
    assert page.message.alert_type == "danger" and "no_such_layer" in page.message.object
    page.config_path.value = "missing.json"
    page._act(lambda: page.state.load_config(page.config_path.value))
    assert page.message.alert_type == "danger"
