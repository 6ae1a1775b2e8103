import dataclasses

import pytest
import torch

from torchbend.apps import demo

pytestmark = pytest.mark.slow
STEP_NAMES = [step.name for step in demo.STEPS]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, demo.run_demo(out, seed=0, progress=False), demo.make_context(seed=0)


def test_every_step_writes_its_picture_and_the_report_shows_it(report):
    out, results, _ = report
    html = (out / "index.html").read_text()
    assert list(results)[: len(demo.STEPS)] == [step.name for step in demo.STEPS]
    for step in demo.STEPS:
        png = out / f"{step.name}.png"
        assert png.read_bytes()[:4] == b"\x89PNG"
        assert f'src="{step.name}.png"' in html and step.title in html
        assert f"def {step.run.__name__}(ctx" in html  # the step's own code


def test_unbent_reference_is_the_plain_model_and_every_bend_differs(report):
    _, results, ctx = report
    (reference,) = results["00_unbent"]
    with torch.no_grad():
        assert torch.equal(reference, ctx.vae.decode(ctx.z))
    for name, outs in results.items():
        if name in ("00_unbent", "10_interpolation") or name not in STEP_NAMES:
            continue
        assert len(outs) == (1 if name == "11_learned_gain" else 4)
        for out in outs:
            assert out.shape == reference.shape and not torch.allclose(out, reference, atol=1e-3), name


def test_interpolation_runs_between_the_two_digits(report):
    _, results, ctx = report
    with torch.no_grad():
        ends = ctx.vae.decode(ctx.vae.encode(ctx.digits)[0])
    for row in results["10_interpolation"]:
        assert row.shape == (8, 1, 28, 28)
        assert torch.allclose(row[0], ends[1], atol=1e-5) and torch.allclose(row[-1], ends[0], atol=1e-5)


def test_same_seed_same_pictures_other_seed_other_latents():
    a, b, c = demo.make_context(0), demo.make_context(0), demo.make_context(1)
    assert torch.equal(a.z, b.z) and not torch.equal(a.z, c.z)
    with torch.no_grad():
        assert all(torch.equal(x, y) for x, y in zip(demo.weight_mask(a), demo.weight_mask(b)))


def test_toolbox_section_writes_its_pictures_and_an_animated_gif(report):
    from PIL import Image

    out = report[0]
    page = (out / "index.html").read_text()
    assert "The network-bending toolbox" in page
    for name in ("toolbox_transforms.png", "toolbox_clusters.png", "toolbox_ablate_clusters.png", "toolbox_sweep.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG" and f'src="{name}"' in page
    with Image.open(out / "toolbox_zoom.gif") as gif:
        assert gif.n_frames == 24
    assert 'src="toolbox_zoom.gif"' in page


def test_report_names_the_seed_and_explains_uniform_rows(report):
    out, results, _ = report
    page = (out / "index.html").read_text()
    assert "Seed: 0" in page
    assert "decoder_net_convt3: every pixel is 0.5." in page  # sigmoid(0): the one channel is dropped
    assert "keeps floor(0.5 x 1) = 0 of the 1 channel(s)" in page
    assert page.count("Uniform output") == sum(
        float(o.max() - o.min()) <= 1e-4 for name, outs in results.items() if name in STEP_NAMES[1:] for o in outs
    )


def test_each_figure_has_an_unbent_row_and_titles_with_values(report):
    ctx = report[2]
    step = next(s for s in demo.STEPS if s.name == "01_weight_mask")
    titles = demo.row_titles(ctx, step)
    assert titles[0] == "unbent" and titles[1] == "decoder.net.convt0.weight: Mask(0.3)" and len(titles) == 5
    with torch.no_grad():
        assert torch.equal(demo.reference(ctx, step), ctx.vae.decode(ctx.z))


def test_the_seed_changes_the_masks_too(report):
    a = report[2]
    c = dataclasses.replace(a, seed=1)  # same latents: only the masks differ
    with torch.no_grad():
        assert not any(torch.equal(x, y) for x, y in zip(demo.weight_mask(a), demo.weight_mask(c)))


def test_audio_section_plays_wav_files_that_decode(report):
    import re

    soundfile = pytest.importorskip("soundfile")
    out = report[0]
    html = (out / "index.html").read_text()
    assert "Is it the case with audio?" in html
    sources = re.findall(r'<audio controls src="([^"]+)"', html)
    assert len(sources) >= 5
    for source in sources:
        data, rate = soundfile.read(out / source)
        assert rate == 16000 and len(data) > 0 and abs(data).max() > 0
    from torchbend.apps.demo_audio import STEPS as AUDIO_STEPS

    assert all(f'src="audio/{step.name}.png"' in html for step in AUDIO_STEPS)


def sections(page):
    """The report's sections, by their title."""
    import html
    import re

    return {
        html.unescape(m.group(1)): m.group(0)
        for m in re.finditer(r"<section><h2>(.*?)</h2>.*?</section>", page, re.DOTALL)
    }


def test_no_panel_is_uniform_or_dark_unless_its_caption_says_so(report):
    import html

    out, results, ctx = report
    by_title = {title: html.unescape(text) for title, text in sections((out / "index.html").read_text()).items()}
    unreadable = []
    for step in demo.STEPS[1:]:
        names = getattr(ctx, step.rows)
        for name, panel in zip(names, results[step.name]):
            if demo.contrast(panel) < demo.READABLE:
                unreadable.append(name)
                said = (
                    f"Uniform output: {name}:" in by_title[step.title]
                    or f"Dark output: {name}:" in by_title[step.title]
                )
                assert said and "black" in by_title[step.title] or "every pixel is" in by_title[step.title], (
                    step.name,
                    name,
                )
    # the dead rows of the tutorial's values (Bias(0.1) on convt2, ...) are gone; what is left is explained
    assert len(unreadable) <= 4, unreadable
    toolbox = by_title["The network-bending toolbox"]
    from torchbend.apps.demo_toolbox import transforms

    for title, panel in zip(transforms(), results["toolbox_transforms"]):
        assert demo.contrast(panel) >= demo.READABLE or f"{title} is dark" in toolbox, title
    assert all(demo.contrast(p) >= demo.READABLE for p in results["toolbox_transforms"])  # Erode, Blur included
    from torchbend.apps.demo_audio import STEPS as AUDIO_STEPS

    for step in AUDIO_STEPS:
        for i, sound in enumerate(results[step.name]):
            assert float(sound.abs().max()) > 1e-3 or f"Sound {i + 1} is silent" in by_title[step.title], step.name


def test_contrast_tells_a_picture_from_a_flat_or_black_one():
    assert demo.contrast(torch.full((4, 1, 28, 28), 0.5)) == 0
    dark = torch.zeros(4, 1, 28, 28)
    dark[:, :, 14, 14] = 0.9  # a few bright pixels on black: under 1% of them
    assert demo.contrast(dark) < demo.READABLE
    assert demo.contrast(torch.rand(4, 1, 28, 28)) > 0.9


def test_the_learned_step_draws_bolder_digits(report):
    _, results, ctx = report
    (learned,) = results["11_learned_gain"]
    (plain,) = results["00_unbent"]
    assert (learned > 0.5).float().mean() > 1.3 * (plain > 0.5).float().mean()
