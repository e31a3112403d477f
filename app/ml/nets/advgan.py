"""AdvGAN's networks (Xiao et al. 2018, "Generating Adversarial Examples with Adversarial Networks").

The generator maps an image to a perturbation *direction* in [-1, 1] (a tanh output); the attack scales it by
each sample's eps, so one trained generator serves every budget and an attack is a single forward pass. It is an
encoder / residual / decoder net like the paper's, but narrower (16-32 channels instead of 8-32 with seven-pixel
kernels), so that one forward costs a fraction of the opponent's own forward pass: AdvGAN is the cheap way to
serve a crowd, and the success check every attack pays (one opponent forward) should stay the larger cost.

The discriminator is the small patch classifier the GAN loss needs during training; it is not saved.
"""

from __future__ import annotations

from torch import Tensor, nn


def generator_architecture(width: int = 16) -> str:
    w, w2 = width, 2 * width
    return (
        f"conv3x3({w})-BN-ReLU, conv4x4/2({w2})-BN-ReLU, conv4x4/2({w2})-BN-ReLU, 2 x residual[conv3x3({w2})-BN-ReLU-"
        f"conv3x3({w2})-BN], convT4x4/2({w2})-BN-ReLU, convT4x4/2({w})-BN-ReLU, conv3x3(1), tanh"
    )


DISCRIMINATOR_ARCHITECTURE = "conv4x4/2(16)-LeakyReLU, conv4x4/2(32)-BN-LeakyReLU, linear(32*7*7->1)"


def _block(conv: nn.Module, channels: int) -> list[nn.Module]:
    return [conv, nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = x + self.body(x)
        return out


class AdvGANGenerator(nn.Module):
    """Pixel-space images (B,C,H,W) in [0,1], H and W divisible by 4, to directions in [-1,1] of the same shape."""

    def __init__(self, channels: int = 1, width: int = 16, residual_blocks: int = 2) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            *_block(nn.Conv2d(channels, w, 3, padding=1, bias=False), w),
            *_block(nn.Conv2d(w, 2 * w, 4, stride=2, padding=1, bias=False), 2 * w),
            *_block(nn.Conv2d(2 * w, 2 * w, 4, stride=2, padding=1, bias=False), 2 * w),
            *[_Residual(2 * w) for _ in range(residual_blocks)],
            *_block(nn.ConvTranspose2d(2 * w, 2 * w, 4, stride=2, padding=1, bias=False), 2 * w),
            *_block(nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1, bias=False), w),
            nn.Conv2d(w, channels, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, x: Tensor) -> Tensor:
        # Centre the pixels on 0 so the first layer sees a symmetric input whatever the dataset's mean.
        out: Tensor = self.net(x * 2.0 - 1.0)
        return out


class AdvGANDiscriminator(nn.Module):
    """Real (clean) vs generated (perturbed) images, one score per image; trained with the least-squares loss."""

    def __init__(self, channels: int = 1, width: int = 16, image_size: int = 28) -> None:
        super().__init__()
        side = image_size // 4
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Flatten(),
            nn.Linear(2 * width * side * side, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.net(x * 2.0 - 1.0).squeeze(1)
        return out
