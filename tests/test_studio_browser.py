"""The studio in headless Chromium: add a bend, move its slider, see the image change, save a config."""

import os
import shutil
import time

import pytest
import torch

import torchbend as tb

CHROMIUM = os.environ.get("TORCHBEND_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytest.importorskip("panel", reason="the studio needs Panel: pip install torchbend[studio]")
playwright = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright (torchbend[dev])")
if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
    pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium, or set TORCHBEND_CHROMIUM)",
                allow_module_level=True)

# the src of the studio's output image, searched through every shadow root
IMAGE_SRC = """() => { const find = (root) => { for (const el of root.querySelectorAll('*')) {
  if (el.matches('img.tb-image')) return el; if (el.shadowRoot) { const f = find(el.shadowRoot); if (f) return f; } }
  return null; }; const el = find(document); return el ? el.src : null; }"""


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def studio(vae, z, tmp_path):
    server = tb.studio(tb.BendedModule(vae), "decode", {"z": z}, out_dir=str(tmp_path), inline=False)
    yield server
    server.stop()


def wait_for_new_image(page, old):
    page.wait_for_function(f"old => ({IMAGE_SRC})() !== old && ({IMAGE_SRC})() !== null", arg=old, timeout=20000)
    return page.evaluate(IMAGE_SRC)


def test_bend_move_a_slider_and_save(browser, studio, tmp_path, vae, z):
    page = browser.new_page()
    page.goto(studio.url)
    plain = wait_for_new_image(page, None)

    page.locator(".tb-targets input").fill("decoder_net_convt0")
    page.locator(".tb-callback select").select_option("Mask")
    page.locator(".tb-field-seed input").fill("0")
    page.locator(".tb-add button").click()
    handle = page.locator(".tb-param-mask_prob .noUi-handle")
    handle.wait_for()
    page.locator(".tb-bends").get_by_text("Mask on decode:decoder_net_convt0").wait_for()
    bent = wait_for_new_image(page, plain)

    for _ in range(10):  # ten steps of 0.01 up from 0.3
        handle.press("ArrowRight")
    param = studio.state.parameters["mask_prob"]
    deadline = time.monotonic() + 20
    while param.value != pytest.approx(0.4) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert param.value == pytest.approx(0.4)
    moved = wait_for_new_image(page, bent)
    assert moved not in (plain, bent)
    assert studio.state.wait().output.png != studio.state.plain_view().png

    page.locator(".tb-config-path input").fill("from-page.json")
    page.locator(".tb-save button").click()
    page.locator(".tb-message").get_by_text("saved").wait_for()
    path = tmp_path / "from-page.json"
    config = tb.BendingConfig.load(path)
    other = tb.BendedModule(vae)
    other.trace("decode", z=z)
    other.bend(config)
    assert other.controllables["mask_prob"].value == param.value
    torch.testing.assert_close(other.decode(z=z), studio.state.bended.decode(z=z))
    page.close()
