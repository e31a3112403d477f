"""The Fashion-MNIST opponent: a small VGG-style CNN that trains to about 93% in minutes on two CPU cores.

Small on purpose: the arena attacks it live for every round, so one PGD step on a batch must cost milliseconds,
and an undefended net of this size is what players should learn to beat (it is easy to fool, which makes the
game interesting at small, barely visible budgets).
"""

from __future__ import annotations

from torch import Tensor, nn

ARCHITECTURE = (
    "conv3x3(32)-BN-ReLU, conv3x3(32)-BN-ReLU, maxpool2, conv3x3(64)-BN-ReLU, conv3x3(64)-BN-ReLU, maxpool2, "
    "dropout(0.3), linear(3136->128)-ReLU, dropout(0.3), linear(128->10)"
)


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    # No conv bias: BatchNorm's shift makes it redundant.
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class FashionCNN(nn.Module):
    """Takes normalised (B,1,28,28) inputs; :class:`app.ml.model.ArenaModel` does the normalising."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, dropout: float = 0.3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_conv_bn_relu(in_channels, 32),
            *_conv_bn_relu(32, 32),
            nn.MaxPool2d(2),
            *_conv_bn_relu(32, 64),
            *_conv_bn_relu(64, 64),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(64 * 7 * 7, 128),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self.classifier(self.features(x))
        return logits
