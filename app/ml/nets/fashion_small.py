"""A small strided CNN for the defended Fashion-MNIST opponents (adversarial training, distillation).

Adversarial training multiplies the cost of every batch by the attack's steps plus one, so this net is about
2.4x cheaper per forward+backward than :class:`app.ml.nets.fashion_cnn.FashionCNN` on one CPU thread (strided
convolutions instead of full-resolution ones plus max pooling). No batch norm and no dropout: train and eval mode
compute the same function, so the attack run inside training sees exactly the net that is being trained.
"""

from __future__ import annotations

from torch import Tensor, nn

ARCHITECTURE = (
    "conv3x3(32)-ReLU, conv3x3(64, stride 2)-ReLU, conv3x3(64, stride 2)-ReLU, linear(3136->128)-ReLU, linear(128->10)"
)


class FashionSmallCNN(nn.Module):
    """Takes normalised (B,1,28,28) inputs; :class:`app.ml.model.ArenaModel` does the normalising."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, kernel_size=3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, kernel_size=3, stride=2, padding=1),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, 128),
            nn.ReLU(inplace=True),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self.classifier(self.features(x))
        return logits
