"""Learn a bend: a per-channel gain on one decoder layer of the MNIST VAE that makes its digits bolder.

    python examples/learn_bold_digits.py [--steps 80] [--out bold.png]

A `tb.Trainable` of shape (16, 1, 1) scales each channel of ``decoder_net_relu2`` (16 x 14 x 14);
`tb.optimize` moves it until the decoded digits hold 1.8 times the ink of the plain ones (ink: the share of
bright pixels, counted smoothly), while the background stays dark. The learned bend is set beside the plain
decoder and a hand-made one (every channel times 2), which brightens the background as much as the strokes.
"""

import argparse

import torch

import torchbend as tb
from torchbend.zoo.mnist_vae import LATENT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--out", help="write the three rows of digits to this PNG (needs matplotlib)")
    args = parser.parse_args()
    torch.manual_seed(0)
    vae = tb.zoo.load_mnist_vae()
    z = torch.randn(16, LATENT)
    with torch.no_grad():
        plain = vae.decode(z)
    ink = lambda img: torch.sigmoid((img - 0.5) * 10).mean()  # noqa: E731  # the share of bright pixels
    target, background = 1.8 * ink(plain), (plain < 0.1).float()

    def loss(img: torch.Tensor) -> torch.Tensor:
        return (ink(img) - target) ** 2 + 0.05 * (img * background).mean()

    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    with bended.bend(tb.Scale(2.0), "decode:decoder_net_relu2"), torch.no_grad():
        by_hand = bended.decode(z=z)

    gain = tb.Trainable(1.0, shape=(16, 1, 1), name="bold")
    bended.bend(tb.Scale(gain), "decode:decoder_net_relu2")
    run = tb.optimize(bended, "decode", {"z": z}, loss, steps=args.steps, lr=0.05, progress=False)
    with torch.no_grad():
        learned = bended.decode(z=z)
    print(f"loss {run.history[0]:.5f} -> {run.best_loss:.5f} in {len(run.history)} steps")
    for name, images in (("plain", plain), ("by hand (x2)", by_hand), ("learned", learned)):
        print(f"{name:15s} ink {ink(images):.3f}  background {(images * background).mean():.4f}")
    print("learned gains:", " ".join(f"{g:.2f}" for g in gain.value.flatten().tolist()))
    if args.out:
        tb.plot.strip([plain, by_hand, learned], titles=["plain", "by hand (x2)", "learned"], n_rows=4, path=args.out)
        print("wrote", args.out)


if __name__ == "__main__":
    main()
