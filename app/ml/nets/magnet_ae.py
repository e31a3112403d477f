"""The autoencoder of MagNet (Meng & Chen 2017, "MagNet: a Two-Pronged Defense against Adversarial Examples"):
their MNIST "structure I", used both as the reformer and as the reconstruction-error detector.

Every layer is a 3x3 convolution followed by a sigmoid, so the output is a greyscale image in [0,1] like the
input; the 2x2 average pool and the 2x2 upsampling make it squeeze the image through a Cx14x14 code. Tiny on
purpose (about 2,000 weights): it trains in minutes on one CPU thread, and it has to model the clean images only
roughly for its reconstruction error to grow off the data manifold, where adversarial images are.

Meng & Chen use 3 filters per layer for MNIST. Fashion-MNIST has texture MNIST lacks, and 3 filters cost the
classifier behind the reformer too much clean accuracy (measured on the first 2,000 test images, fashion-cnn at
93.6%: 86.5% behind a 3-filter reformer after 4 epochs, 89.1% behind an 8-filter one after 3), so the default
is 8.
"""

from __future__ import annotations

from torch import Tensor, nn

DEFAULT_CHANNELS = 8


def architecture(channels: int = DEFAULT_CHANNELS) -> str:
    c = channels
    return (
        f"conv3x3({c})-sigmoid, avgpool2, conv3x3({c})-sigmoid, conv3x3({c})-sigmoid, upsample2 (nearest), "
        f"conv3x3({c})-sigmoid, conv3x3(1)-sigmoid (Meng & Chen 2017, MNIST structure I, {c} filters)"
    )


def _conv_sigmoid(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1), nn.Sigmoid()]


class MagNetAutoencoder(nn.Module):
    """Takes and returns pixel-space (B,C,H,W) images in [0,1] (H and W even); no normalisation."""

    def __init__(self, in_channels: int = 1, channels: int = DEFAULT_CHANNELS) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            *_conv_sigmoid(in_channels, channels),
            nn.AvgPool2d(2),
            *_conv_sigmoid(channels, channels),
        )
        self.decoder = nn.Sequential(
            *_conv_sigmoid(channels, channels),
            nn.Upsample(scale_factor=2, mode="nearest"),
            *_conv_sigmoid(channels, channels),
            *_conv_sigmoid(channels, in_channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        reconstruction: Tensor = self.decoder(self.encoder(x))
        return reconstruction
