"""Studio latency: from a slider change (or an OSC message) to the new image on the page, in headless Chromium.

    python benchmarks/studio.py [--changes 100] [--rounds 30] [--calls 20]

On the shipped MNIST VAE (decode, 16 latents) with a live Mask on decoder_net_convt1. Prints:
the render itself (bent decode + PNG) against the plain decode, measured in the same run; the
slider-to-image latency measured inside the page (key press on the slider handle -> new <img> src);
the OSC-to-image latency (message sent -> new image seen, measured from Python, so it includes
Playwright's polling); and the OSC update rate the server sustains, with whether the final value
of each burst was kept. Needs torchbend[studio], playwright and Chromium at /usr/bin/chromium.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torchbend as tb  # noqa: E402
from timing import benchmark_args, interleaved_medians  # noqa: E402
from torchbend.apps.studio.views import output_view  # noqa: E402
from torchbend.zoo import load_mnist_vae  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
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
FIND = """const find = (root, sel) => { for (const el of root.querySelectorAll('*')) { if (el.matches(sel)) return el;
  if (el.shadowRoot) { const f = find(el.shadowRoot, sel); if (f) return f; } } return null; };
const image = () => { const el = find(document, 'img.tb-image'); return el ? el.src : null; };"""
# one slider step, timed inside the page: key press -> the output image's src changes
SLIDER_STEP = (
    "async (key) => {"
    + FIND
    + """
  const host = find(document, '.tb-param-mask_prob'); const handle = find(host.shadowRoot || host, '.noUi-handle');
  const old = image(); const t0 = performance.now();
  handle.dispatchEvent(new KeyboardEvent('keydown', {key, bubbles: true, composed: true}));
  while (image() === old) { await new Promise(r => setTimeout(r, 0)); if (performance.now() - t0 > 10000) return -1; }
  return performance.now() - t0; }"""
)


class _NoBrowser(Exception):
    pass


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def line(name: str, ms: list[float]) -> str:
    return f"{name:<34} median {statistics.median(ms):7.1f} ms   p95 {percentile(ms, 0.95):7.1f} ms   (n={len(ms)})"


def main() -> None:
    import argparse

    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--changes", type=int, default=100, help="slider and OSC changes timed on the page")
    extra.add_argument("--no-browser", action="store_true", help="skip the page latencies (no Chromium needed)")
    extra.add_argument("--seconds", type=float, default=1.0, help="length of each OSC stream (default: 1)")
    known, rest = extra.parse_known_args()
    sys.argv[1:] = rest
    args = benchmark_args(__doc__)
    from playwright.sync_api import sync_playwright
    from pythonosc.udp_client import SimpleUDPClient

    z = torch.randn(16, 64)
    bended = tb.BendedModule(load_mnist_vae())
    bended.trace("decode", z=z)
    prob = tb.BendingParameter("mask_prob", 0.5, range=(0.0, 1.0))
    bended.bend(tb.Mask(prob, seed=0), "decoder_net_convt1", fn="decode")
    vae = bended.module

    flip = iter(range(10**9))

    def bent_render():
        prob.value = 0.4 + 0.1 * (next(flip) % 2)
        with torch.no_grad():
            return output_view(bended.decode(z=z))

    def plain():
        with torch.no_grad():
            return vae.decode(z)

    times = interleaved_medians({"plain decode": plain, "bent decode + PNG": bent_render}, args.rounds, args.calls)
    print(f"{'variant':<34} {'ms/call':>8} {'ratio':>7}")
    for name, t in times.items():
        print(f"{name:<34} {t * 1000:8.2f} {t / times['plain decode']:7.3f}")
    print()

    if known.no_browser:
        from torchbend.apps.studio import StudioState

        server = StudioState(bended, "decode", {"z": z})
        server.state = server
        server.stop = server.close
    else:
        server = tb.studio(bended, "decode", {"z": z}, inline=False)
    osc = server.state.start_osc(port=0)
    client = SimpleUDPClient("127.0.0.1", osc.port)
    try:
        with sync_playwright() as p:
            if known.no_browser:
                raise _NoBrowser
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page()
            page.goto(server.url)
            page.wait_for_function("() => {" + FIND + " return image() !== null; }", timeout=30000)
            page.locator(".tb-param-mask_prob .noUi-handle").wait_for()
            for _ in range(3):  # warm up
                page.evaluate(SLIDER_STEP, "ArrowRight")
            slider = [page.evaluate(SLIDER_STEP, "ArrowRight" if i % 2 else "ArrowLeft") for i in range(known.changes)]
            lost = sum(1 for ms in slider if ms < 0)
            print(line("slider -> image on page", [ms for ms in slider if ms >= 0]) + f"   lost {lost}")

            latencies = []
            for i in range(known.changes):
                old = page.evaluate("() => {" + FIND + " return image(); }")
                start = time.perf_counter()
                client.send_message("/torchbend/mask_prob", 0.3 + 0.2 * (i % 2))
                page.wait_for_function(
                    "old => {" + FIND + " return image() !== old; }", arg=old, polling=1, timeout=10000
                )
                latencies.append((time.perf_counter() - start) * 1000)
            print(line("OSC message -> image on page", latencies))
            browser.close()
    except _NoBrowser:
        pass
    try:
        print()
        print(f"{'OSC stream':<26} {'sent/s':>8} {'handled/s':>10} {'lost':>6} {'final value kept':>17}")
        for rate in (100, 1000, 5000, None):  # None: as fast as the client can send
            before = osc.received
            n = max(2, round((rate or 5000) * known.seconds))
            values = [0.5 + 0.25 * (i % 3) for i in range(n - 1)] + [0.125]  # exact in OSC's float32
            start = time.perf_counter()
            for i, v in enumerate(values):
                if rate:
                    while time.perf_counter() < start + i / rate:
                        pass
                client.send_message("/torchbend/mask_prob", v)
            sent = time.perf_counter() - start
            deadline = time.monotonic() + 5
            while prob.value != values[-1] and time.monotonic() < deadline:
                time.sleep(0.001)
            handled = time.perf_counter() - start
            received = osc.received - before
            name = f"{rate} Hz" if rate else "unpaced burst"
            print(
                f"{name:<26} {n / sent:8.0f} {received / handled:10.0f} {n - received:6d} "
                f"{str(prob.value == values[-1]):>17}"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
