"""The studio in headless Chromium: add a bend, move its slider, see the image change, save a config."""

import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest
import torch

import torchbend as tb

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("TORCHBEND_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytest.importorskip("panel", reason="the studio needs Panel: pip install torchbend[studio]")
playwright = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright (torchbend[dev])")
if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
    pytest.skip(
        f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium, or set TORCHBEND_CHROMIUM)",
        allow_module_level=True,
    )

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


def test_the_page_needs_its_token_and_keeps_files_in_out_dir(browser, studio, tmp_path):
    page = browser.new_page()
    assert page.goto(f"http://127.0.0.1:{studio.port}/").status == 403
    assert page.goto(f"http://127.0.0.1:{studio.port}/?token=wrong").status == 403
    assert page.goto(studio.url).status == 200
    wait_for_new_image(page, None)  # the websocket, with the cookie the token set, works
    os.mkfifo(tmp_path / "pipe.json")
    folder = tmp_path.resolve()
    message = page.locator(".tb-message")
    elsewhere = str(tmp_path.parent / "elsewhere.json")
    for name, button, shown in [
        ("../escape.json", "save", f"'../escape.json' is not a file name in {folder}"),
        (elsewhere, "save", f"{elsewhere!r} is not a file name in {folder}"),
        ("sub/bends.json", "load", f"'sub/bends.json' is not a file name in {folder}"),
        ("pipe.json", "load", f"{folder / 'pipe.json'} is not a regular file"),
        ("bends.json", "save", f"saved {folder / 'bends.json'}"),
        ("bends.json", "save", f"{folder / 'bends.json'} exists; tick 'overwrite'"),
    ]:
        page.locator(".tb-config-path input").fill(name)
        page.locator(f".tb-{button} button").click()
        message.get_by_text(shown).wait_for(timeout=20000)
    page.locator(".tb-overwrite input").check()
    page.locator(".tb-save button").click()
    message.get_by_text(f"saved {tmp_path.resolve() / 'bends.json'}").wait_for(timeout=20000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bends.json", "pipe.json"]
    page.close()


@pytest.fixture
def studio_process(tmp_path):
    """`torchbend studio` in another process (a freezing regex would hold this one's GIL) and its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "torchbend", "studio", "--port", "0", "--out", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        while not (url := re.search(r"http://\S+", lines.get(timeout=max(deadline - time.monotonic(), 0.1)))):
            pass
        yield url.group(0)
    finally:
        process.kill()
        process.wait()


def test_a_freezing_pattern_leaves_the_studio_rendering_for_everyone(browser, studio_process):
    typing, other = browser.new_page(), browser.new_page()
    for page in (typing, other):
        page.goto(studio_process)
    plain = wait_for_new_image(other, None)
    typing.locator(".tb-targets input").fill(".*" * 30 + "!")
    other.locator(".tb-targets input").fill("decoder_net_convt0")
    other.locator(".tb-callback select").select_option("Mask")
    other.locator(".tb-add button").click()
    wait_for_new_image(other, plain)  # renders go on (the old re.fullmatch froze the whole process here)
    typing.locator(".tb-target-info").get_by_text(re.compile("0 match|google-re2")).wait_for(timeout=20000)
    typing.close()
    other.close()
