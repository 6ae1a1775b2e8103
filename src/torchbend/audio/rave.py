"""Load a trained RAVE model (acids-rave) as a streaming, bendable module.

    >>> rave = load_rave("runs/my_rave")            # a run folder (config.gin + a .ckpt), or the .ckpt itself
    >>> z = rave.encode(x)                          # x: (1, 1, samples)
    >>> rave.bend(tb.Scale(scale=2.0), rave.resolve_parameters(r"decoder.*weight")[0])
    >>> y = rave.decode(z)                          # one buffer of a stream: caches carry over to the next call

The model is built by RAVE's own code from the run's ``config.gin``, with cached convolutions
enabled (streaming, as nn~ runs it), its weights loaded with ``torch.load(..., weights_only=True)``,
and its caches created by a warm-up call and zeroed. ``encode`` / ``decode`` keep RAVE's latent
pre- and post-processing (the variational encoder's mean, then the latent PCA), as its export does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional as F

INSTALL_HINT = (
    "loading RAVE models needs acids-rave, which is not installed: "
    "pip install acids-rave -c constraints.txt (keep your torch version pinned in constraints.txt, "
    "e.g. 'torch==2.3.0', so that pip does not replace it), plus pip install 'torchbend[audio]'"
)

CACHE_BUFFERS = r".*\.(pad|cache)"


def _import_rave() -> tuple[Any, Any]:
    try:
        import gin
        import rave
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return rave, gin


def _run_files(path: Path) -> tuple[Path, Path]:
    """(config.gin, checkpoint) of a run folder or of a checkpoint file."""
    if not path.exists():
        raise FileNotFoundError(f"no RAVE run at {path}")
    if path.is_file():
        checkpoint, folder = path, path.parent
    else:
        found = sorted(path.rglob("*.ckpt"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise FileNotFoundError(f"no .ckpt checkpoint under {path}")
        checkpoint, folder = found[-1], path
    for candidate in (folder, *list(folder.parents)[:3]):  # checkpoints sit a few folders below config.gin
        if (candidate / "config.gin").is_file():
            return candidate / "config.gin", checkpoint
    raise FileNotFoundError(f"no config.gin next to {checkpoint} (RAVE writes it at the top of the run folder)")


class StreamingRAVE(nn.Module):
    """RAVE's encoder and decoder with the latent processing of its export: ``encode``, ``decode``, ``forward``.

    ``latent_size`` keeps the first principal components of the latent (all by default); the
    others are set to zero on decoding (RAVE's export draws them at random; zeros keep calls
    deterministic).
    """

    if TYPE_CHECKING:  # buffers, for the type checker (TorchScript would read a class annotation)
        latent_pca: torch.Tensor
        latent_mean: torch.Tensor

    def __init__(self, pretrained: Any, latent_size: int | None = None) -> None:
        super().__init__()
        self.pqmf = getattr(pretrained, "pqmf", None)
        self.encoder = pretrained.encoder
        self.decoder = pretrained.decoder
        self.sample_rate = int(pretrained.sr)
        self.full_latent_size = int(pretrained.latent_size)
        self.latent_size = int(latent_size or self.full_latent_size)
        self.variational = hasattr(self.encoder, "reparametrize") and hasattr(pretrained, "latent_pca")
        if self.variational:
            self.register_buffer("latent_pca", pretrained.latent_pca.detach().clone())
            self.register_buffer("latent_mean", pretrained.latent_mean.detach().clone())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if self.pqmf is not None:
            x = self.pqmf(x)
        z = self.encoder(x)
        if self.variational:
            z = z[:, : z.shape[1] // 2]  # the posterior mean (what reparametrize returns first, without noise)
            z = z - self.latent_mean.unsqueeze(-1)
            z = F.conv1d(z, self.latent_pca.unsqueeze(-1))
            z = z[:, : self.latent_size]
        return z

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if self.variational:
            missing = self.full_latent_size - z.shape[1]
            if missing > 0:
                z = torch.cat([z, z.new_zeros(z.shape[0], missing, z.shape[-1])], 1)
            z = F.conv1d(z, self.latent_pca.T.unsqueeze(-1))
            z = z + self.latent_mean.unsqueeze(-1)
        y = self.decoder(z)
        if self.pqmf is not None:
            y = self.pqmf.inverse(y)
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    @torch.no_grad()
    def reset_cache(self) -> None:
        """Zero every streaming cache, so the next call starts a new stream."""
        for name, buffer in self.named_buffers():
            if name.rsplit(".", 1)[-1] in ("pad", "cache"):
                buffer.zero_()


def load_rave(path: str | Path, buffer_size: int = 2048 * 4, latent_size: int | None = None) -> Any:
    """A RAVE run folder or checkpoint as a `torchbend.BendedModule`, streaming, traced on a (1, 1, buffer_size) buffer.

    ``encode``, ``decode`` and ``forward`` are traced; the streaming caches are opted in as bendable
    buffers. Needs acids-rave (``pip install acids-rave``, with torch constrained to your version).
    """
    rave, gin = _import_rave()
    import cached_conv

    import torchbend as tb

    config, checkpoint = _run_files(Path(path))
    cached_conv.use_cached_conv(True)
    try:
        gin.clear_config()
        gin.parse_config_file(str(config))
        pretrained = rave.RAVE()
    finally:
        cached_conv.use_cached_conv(False)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    pretrained.load_state_dict(state.get("state_dict", state), strict=False)
    pretrained.eval()
    for module in pretrained.modules():
        if hasattr(module, "weight_g"):
            nn.utils.remove_weight_norm(module)
    model = StreamingRAVE(pretrained, latent_size).eval()
    with torch.no_grad():
        model(torch.zeros(1, 1, buffer_size))
    model.reset_cache()
    bended = tb.BendedModule(model, buffers=[CACHE_BUFFERS])
    x = torch.zeros(1, 1, buffer_size)
    bended.trace("encode", x)
    z = model.encode(x)
    bended.trace("decode", z)
    bended.trace("forward", x)
    model.reset_cache()
    return bended
