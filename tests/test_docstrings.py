"""Every module docstring's example runs, against the shipped MNIST VAE: examples go stale otherwise.

An example line with no output shown may print anything (a repr); an output shown must match.
"""

import doctest
import importlib
import pkgutil

import pytest
import torch

import torchbend

# modules whose examples are illustrations needing resources the namespace below lacks (a sound file, a MIDI
# port, a server, a TorchScript file); their examples are exercised by their own test modules instead
ILLUSTRATED = (
    "torchbend.audio",
    "torchbend.apps.control",
    "torchbend.apps.studio",
    "torchbend.apps.demo_toolbox",
    "torchbend.apps.input_spec",
    "torchbend.loading",
    "torchbend.apps.outputs",
    "torchbend.apps.render",
    "torchbend.torchscript.script_module",
    "torchbend.torchscript.graph",
    "torchbend.export.torchscript_export",
    "torchbend.export.torch_export",
    "torchbend.naming",
)
MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(torchbend.__path__, "torchbend.")
    if not m.name.endswith("__main__") and not m.name.startswith(ILLUSTRATED)
)


class _ShownOutputsOnly(doctest.OutputChecker):
    def check_output(self, want: str, got: str, optionflags: int) -> bool:
        return not want or super().check_output(want, got, optionflags)


def namespace() -> dict:
    import torchbend as tb
    from torchbend.zoo import load_mnist_vae

    torch.manual_seed(0)
    vae = load_mnist_vae()
    z = torch.randn(16, 64)
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    return {
        "tb": tb,
        "torch": torch,
        "vae": vae,
        "model": vae,
        "z": z,
        "z1": z[:8],
        "z2": z[8:],
        "x": torch.rand(4, 1, 28, 28),
        "bended": bended,
        "latents": [z[:4], z[4:8]],
    }


@pytest.mark.parametrize("name", MODULES)
def test_module_docstring_examples_run(name, tmp_path, monkeypatch):
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder(recurse=False).find(module, name, globs={**vars(module), **namespace()})
    examples = [t for t in tests if t.examples]
    if not examples:
        pytest.skip(f"{name} has no example")
    monkeypatch.chdir(tmp_path)
    runner = doctest.DocTestRunner(checker=_ShownOutputsOnly(), optionflags=doctest.ELLIPSIS)
    for test in examples:
        runner.run(test)
    assert runner.failures == 0, f"{name}: {runner.failures} example(s) failed (run with -s to see them)"
