"""Tiny random-weight models shared by the tests (no downloads)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn
from torch.nn import functional as F


class ConvVAE(nn.Module):
    """A small MNIST-like VAE with `encode`, `decode` and `forward`."""

    def __init__(self, latent: int = 8) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 4, 3, 2, 1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.Dropout2d(0.1),
            nn.Conv2d(4, 8, 3, 2, 1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(8 * 7 * 7, 2 * latent),
        )
        self.decoder = nn.ModuleDict(
            {
                "fc": nn.Linear(latent, 8 * 7 * 7),
                "net": nn.Sequential(),
            }
        )
        self.decoder["net"].add_module("convt0", nn.ConvTranspose2d(8, 4, 4, 2, 1))
        self.decoder["net"].add_module("bn0", nn.BatchNorm2d(4))
        self.decoder["net"].add_module("relu0", nn.ReLU())
        self.decoder["net"].add_module("convt1", nn.ConvTranspose2d(4, 1, 4, 2, 1))
        self.decoder["net"].add_module("out", nn.Sigmoid())

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, v = self.encoder(x).chunk(2, dim=-1)
        return mu, F.softplus(v)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.decoder["fc"](z).view(z.shape[0], 8, 7, 7)
        return self.decoder["net"](h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu, _ = self.encode(x)
        return self.decode(mu)


class Residual(nn.Module):
    def __init__(self, c: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(c, c, 3, padding=1)
        self.conv2 = nn.Conv1d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(torch.relu(self.conv1(x)))


class ShapeLoop(nn.Module):
    """Python arithmetic on x.shape and a loop over range(x.shape[-1])."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = x.shape[-1]
        half = steps // 2
        out = torch.zeros(x.shape[0], x.shape[1], dtype=x.dtype)
        for t in range(steps):
            out = out + self.proj(x[..., t]) * (1.0 if t < half else 0.5)
        return out / steps


class IfOnValue(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        if h.mean() > -100:
            return self.b(h)
        return h


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.out = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        a, _ = self.attn(h, h, h, need_weights=False)
        return self.out(h + a)


class Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(3, 5, batch_first=True)
        self.head = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, (hn, cn) = self.lstm(x)
        return self.head(h[:, -1])


class Tied(nn.Module):
    """An encoder and a decoder sharing one weight."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Linear(6, 3, bias=False)
        self.dec = nn.Linear(3, 6, bias=False)
        self.dec.weight = self.enc.weight  # dec uses it transposed below

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(torch.tanh(self.enc(x)), self.dec.weight.t())


class CatUser(nn.Module):
    """Uses one activation inside a list, a tuple and a keyword argument."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.lin(x)
        b = torch.cat([a, x], dim=1)
        c = torch.stack((a, a), dim=0).sum(0)
        d = torch.add(x, other=a)
        return torch.cat([b, c, d], dim=1)


def crafted_name(marker: str) -> str:
    """A submodule name that, written unescaped into code as ``getattr(x, "<name>")``, sets ``builtins.<marker>``
    (no dot: nn.Module accepts it; no comma: torch.export saves it)."""
    return f'training") and 0 or exec("import builtins\\x3bbuiltins\\x2e{marker} = 1") or ("'


class Crafted(nn.Module):
    """One linear layer stored under `name` (any string nn.Module accepts)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.add_module(name, nn.Linear(3, 3))
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, self.name)(x) + 1


def seeded(model: nn.Module, seed: int = 0) -> nn.Module:
    """Re-initialise `model` deterministically, nonzero BatchNorm stats included, in eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        for name, b in model.named_buffers():
            if b.is_floating_point():
                if "var" in name:
                    b.copy_(torch.rand(b.shape, generator=g) + 0.5)
                else:
                    b.copy_(torch.randn(b.shape, generator=g) / 10)
    return model.eval()


def run_bounded(code: str, *args: str, timeout: float = 120) -> list[str]:
    """The lines `code` prints, run in another interpreter: a regex that freezes it (holding the GIL, which
    no thread of this process could then interrupt) fails the test instead of hanging the suite."""
    try:
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {timeout} s: a pattern froze the process")
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def state_snapshot(model: nn.Module) -> dict[str, tuple[object, torch.Tensor]]:
    """Each parameter and buffer: the object itself and a copy of its value."""
    named = list(model.named_parameters(remove_duplicate=False)) + list(model.named_buffers(remove_duplicate=False))
    return {name: (t, t.detach().clone()) for name, t in named}


def assert_unchanged(model: nn.Module, snapshot: dict[str, tuple[object, torch.Tensor]]) -> None:
    named = list(model.named_parameters(remove_duplicate=False)) + list(model.named_buffers(remove_duplicate=False))
    assert [n for n, _ in named] == list(snapshot)
    for name, t in named:
        obj, value = snapshot[name]
        assert t is obj, f"{name} was replaced"
        assert torch.equal(t.detach(), value), f"{name} changed"


@pytest.fixture
def vae() -> ConvVAE:
    return seeded(ConvVAE())


@pytest.fixture
def z() -> torch.Tensor:
    return torch.randn(16, 8, generator=torch.Generator().manual_seed(1))


class TiedRecurrent(nn.Module):
    """A tiny language-model shape: an embedding tied to the output layer around an LSTM."""

    def __init__(self, vocab: int = 11, width: int = 6) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.lstm = nn.LSTM(width, width, batch_first=True)
        self.out = nn.Linear(width, vocab, bias=False)
        self.out.weight = self.embed.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(self.embed(tokens))
        return self.out(h)


_LEAKED_THREADS: list[str] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A thread left running that is not a daemon would keep the test process alive after the last test
    (and hang CI): fail the session naming it instead (the process exits in `pytest_unconfigure`)."""
    import threading

    _LEAKED_THREADS.extend(
        t.name for t in threading.enumerate() if t.is_alive() and not t.daemon and t is not threading.main_thread()
    )
    if _LEAKED_THREADS:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    if _LEAKED_THREADS:
        import os
        import sys

        print(f"\nFAILED: non-daemon threads left running after the tests: {', '.join(_LEAKED_THREADS)}", flush=True)
        sys.stderr.flush()
        os._exit(int(pytest.ExitCode.TESTS_FAILED))
