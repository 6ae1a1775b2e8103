"""A first bend: wrap a small conv decoder, trace it, bend a weight and an activation.

Run with `make demo` (or `python examples/quickstart.py`).
"""

import torch
from torch import nn

import torchbend as tb


class Decoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 16 * 7 * 7)
        self.net = nn.Sequential(
            nn.ConvTranspose2d(16, 8, 4, 2, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(8, 1, 4, 2, 1),
            nn.Sigmoid(),
        )

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z).view(z.shape[0], 16, 7, 7))


def main() -> None:
    torch.manual_seed(0)
    model = Decoder().eval()
    z = torch.randn(16, 8)
    plain = model.decode(z)

    bended = tb.BendedModule(model)
    bended.trace("decode", z=z)
    bended.print_weights()
    bended.print_activations("decode")

    keep = tb.BendingParameter("keep", 0.2, range=(0.0, 1.0))
    with bended.bend(tb.Mask(prob=keep, seed=0), "net.0.weight"):
        out = bended.decode(z)
        print(f"\nMask(keep=0.2) on net.0.weight: mean |change| = {(out - plain).abs().mean():.4f}")
        bended.update("keep", 1.0)
        out = bended.decode(z)
        print(f"the same bend at keep=1.0:      mean |change| = {(out - plain).abs().mean():.4f}")

    with bended.bend(tb.Scale(-1.0), "net_1", fn="decode"):
        out = bended.decode(z)
        print(f"Scale(-1) on activation net_1:  mean |change| = {(out - plain).abs().mean():.4f}")

    print("after the bends, the plain output is back:", torch.equal(bended.decode(z), plain))


if __name__ == "__main__":
    main()
