"""The generator (and the encoder and discriminator that train it) behind Defense-GAN on Fashion-MNIST.

Fully connected rather than convolutional: Defense-GAN runs L gradient steps on z for R restarts at *every*
classification, so the generator's forward+backward cost is multiplied by L*R on each query (and again by the
attack's steps in a round). On one CPU thread a 32->256->512->784 MLP costs a few times less per step than a small
DCGAN (7x7 -> 14x14 -> 28x28 transposed convolutions), which is what makes the projection affordable in play.
Batch norm in the generator steadies GAN training; in eval mode (how Defense-GAN uses it) it is a fixed affine map
per unit, so an image's projection does not depend on the rest of its batch.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

LATENT_DIM = 32
ARCHITECTURE = (
    f"generator: z ~ N(0, I_{LATENT_DIM}) -> linear(256)-BN-ReLU -> linear(512)-BN-ReLU -> linear(784)-sigmoid -> "
    "1x28x28; trained with (training only) an encoder linear(784->512)-LeakyReLU(0.2) -> linear(256)-LeakyReLU(0.2) "
    f"-> linear(2x{LATENT_DIM}) (mean, log-variance) and a discriminator linear(784->512)-LeakyReLU(0.2) -> "
    "linear(256)-LeakyReLU(0.2) -> linear(1)"
)


class FashionGenerator(nn.Module):
    """Maps latent codes (B, latent_dim) to images (B,1,28,28) in [0,1] (pixel space: no normalisation)."""

    def __init__(self, latent_dim: int = LATENT_DIM) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.body = nn.Sequential(
            nn.Linear(latent_dim, 256),
            nn.BatchNorm1d(256),
            nn.ReLU(inplace=True),
            nn.Linear(256, 512),
            nn.BatchNorm1d(512),
            nn.ReLU(inplace=True),
            nn.Linear(512, 28 * 28),
            nn.Sigmoid(),
        )

    def forward(self, z: Tensor) -> Tensor:
        images: Tensor = self.body(z).view(-1, 1, 28, 28)
        return images

    def folded_layers(self) -> list[tuple[Tensor, Tensor]]:
        """The three linear layers as detached (weight, bias) pairs with eval-mode batch norm folded in:
        ``sigmoid(L3(relu(L2(relu(L1(z))))))`` is this net in eval mode. What Defense-GAN's projection uses to run
        its many small steps without autograd's per-operation overhead."""
        layers = []
        with torch.no_grad():
            for linear, norm in ((self.body[0], self.body[1]), (self.body[3], self.body[4]), (self.body[6], None)):
                weight, bias = linear.weight.detach().clone(), linear.bias.detach().clone()
                if norm is not None:
                    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
                    weight = weight * scale[:, None]
                    bias = (bias - norm.running_mean) * scale + norm.bias
                layers.append((weight.contiguous(), bias.contiguous()))
        return layers


def image_mlp(outputs: int) -> nn.Sequential:
    """(B,1,28,28) images to ``outputs`` numbers through two LeakyReLU layers: the discriminator's and the encoder's
    body (both used only while training the generator)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(28 * 28, 512),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Linear(512, 256),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Linear(256, outputs),
    )


class FashionDiscriminator(nn.Module):
    """Real/fake logit of (B,1,28,28) pixel-space images; used only while training the generator."""

    def __init__(self) -> None:
        super().__init__()
        self.body = image_mlp(1)

    def forward(self, x: Tensor) -> Tensor:
        logit: Tensor = self.body(x).squeeze(1)
        return logit


class FashionEncoder(nn.Module):
    """(B,1,28,28) images to the mean and log-variance of q(z|x); used only while training the generator."""

    def __init__(self, latent_dim: int = LATENT_DIM) -> None:
        super().__init__()
        self.body = image_mlp(2 * latent_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_var = self.body(x).chunk(2, dim=1)
        return mean, log_var
