"""The Panel page bound to a StudioState, without a browser: as in a notebook, and its server's token."""

import http.client
import os
import re

import pytest

import torchbend as tb

pn = pytest.importorskip("panel", reason="the studio needs Panel: pip install torchbend[studio]")

from torchbend.apps.studio.app import StudioPage  # noqa: E402
from torchbend.apps.studio.state import StudioState  # noqa: E402


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
    assert set(page.table.value["name"]) == {
        "decoder_net_convt0",
        "decoder.net.convt0.weight",
        "decoder.net.convt0.bias",
    }
    page.table.selection = [1]  # clicking a row fills the targets
    assert page.targets.value == page.table.value.iloc[1]["name"]
    assert page.target_info.object.startswith("1 match(es)")
    page.targets.value = "decoder_net_convt0"
    page.callback.value = "Affine"
    assert set(page.field_widgets) == {"scale", "bias"}
    page.field_widgets["scale"][1].value = 0.5
    page.field_widgets["bias"][2].value = False  # bias stays a plain number
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


def test_config_box_names_files_in_out_dir_and_reads_them_off_the_event_loop(page, tmp_path):
    def outcome(action):
        action().join(20)  # on a worker thread
        return page.message.alert_type, page.message.object

    for name in ["../escape.json", str(tmp_path.parent / "elsewhere.json"), "sub/bends.json"]:
        page.config_path.value = name
        for action in (page.save, page.load):
            kind, text = outcome(action)
            assert kind == "danger" and f"is not a file name in {tmp_path.resolve()}" in text
    page.config_path.value = "bends.json"
    assert outcome(page.save) == ("success", f"saved {tmp_path.resolve() / 'bends.json'}")
    assert outcome(page.save)[1].endswith("bends.json exists; tick 'overwrite' (overwrite=True) to replace it")
    page.overwrite.value = True
    assert outcome(page.save)[0] == "success"
    assert outcome(page.load) == ("success", f"loaded 0 bend(s) from {tmp_path.resolve() / 'bends.json'}")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.json")
        page.config_path.value = "pipe.json"
        assert outcome(page.load) == ("danger", f"ValueError: {tmp_path.resolve() / 'pipe.json'} is not a regular file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bends.json", "pipe.json"][: 1 + hasattr(os, "mkfifo")]


def test_targets_box_shows_why_a_pattern_is_refused(page, monkeypatch):
    from torchbend import naming

    monkeypatch.setattr(naming, "_re2", lambda: None)  # as without google-re2
    page.targets.value = "((.+))+!"
    assert "repeats a group that repeats" in page.target_info.object
    assert "pip install google-re2" in page.target_info.object


def get(server, path="/", cookie=None, websocket=False):
    """The status of a request to the studio (a websocket handshake: 101 when let through), and its cookie."""
    headers = {"Cookie": cookie} if cookie else {}
    if websocket:  # as a local process would: no Origin header
        headers.update(
            {
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Protocol": "bokeh, x",
            }
        )
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, (response.getheader("Set-Cookie") or "").split(";")[0]
    finally:
        connection.close()


@pytest.fixture
def served(vae, z, tmp_path):
    server = tb.studio(tb.BendedModule(vae), "decode", {"z": z}, out_dir=str(tmp_path), inline=False)
    yield server
    server.stop()


def test_the_page_and_its_websocket_need_the_token(served):
    assert re.fullmatch(rf"http://127\.0\.0\.1:{served.port}/\?token=[\w-]{{40,}}", served.url)
    assert served.token not in repr(served)
    assert get(served)[0] == 403
    assert get(served, "/?token=wrong")[0] == 403
    assert get(served, "/ws", websocket=True)[0] == 403
    status, cookie = get(served, f"/?token={served.token}")
    assert status == 200 and cookie == f"torchbend-studio-{served.port}={served.token}"
    assert get(served, cookie=cookie)[0] == 200  # the page's own requests carry the cookie
    assert get(served, "/ws", cookie=cookie, websocket=True)[0] == 101
    assert get(served, "/ws", cookie=f"torchbend-studio-{served.port}=wrong", websocket=True)[0] == 403


def test_other_hosts_than_loopback_need_allow_remote_and_still_the_token(vae, z, tmp_path, monkeypatch):
    from torchbend.apps import cli
    from torchbend.apps.studio import command

    def served_anyway(args):
        raise AssertionError("the command went on to load the model and serve")

    monkeypatch.setattr(command, "traced", served_anyway)
    with pytest.raises(SystemExit, match="--allow-remote"):
        cli.main(["studio", "--host", "0.0.0.0", "--port", "0"])
    bended = tb.BendedModule(vae)
    with pytest.raises(ValueError, match="allow_remote=True"):
        tb.studio(bended, "decode", {"z": z}, host="0.0.0.0", inline=False)
    server = tb.studio(
        bended, "decode", {"z": z}, host="0.0.0.0", allow_remote=True, out_dir=str(tmp_path), inline=False
    )
    try:
        assert get(server)[0] == 403
        assert get(server, f"/?token={server.token}")[0] == 200
    finally:
        server.stop()
