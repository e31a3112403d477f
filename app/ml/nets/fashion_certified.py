"""The net of the certified opponent: Wong & Kolter's (2018) small convolutional net, as a flat ``nn.Sequential``.

Interval bound propagation (app/ml/defenses/interval.py) walks the layers in order, so the net is a plain
sequence of Conv2d, ReLU, Flatten and Linear layers: no batch norm (its train-mode statistics would make the
bound of a batch depend on the other images in it) and no pooling. It is the architecture whose Fashion-MNIST
certified error Croce et al. (2019) re-evaluated, so the card's figures compare with theirs.
"""

from __future__ import annotations

from torch import nn

ARCHITECTURE = (
    "conv4x4(16, stride 2, pad 1)-ReLU, conv4x4(32, stride 2, pad 1)-ReLU, linear(1568->100)-ReLU, linear(100->10)"
)


class FashionCertifiedCNN(nn.Sequential):
    """Takes normalised (B,1,28,28) inputs; :class:`app.ml.model.ArenaModel` does the normalising."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__(
            nn.Conv2d(in_channels, 16, kernel_size=4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=4, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, 100),
            nn.ReLU(),
            nn.Linear(100, num_classes),
        )
