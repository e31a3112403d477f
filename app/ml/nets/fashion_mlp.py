"""A multilayer perceptron on raw pixels: no convolutions, so no built-in notion of neighbouring pixels.

It sees an image as 784 unrelated numbers, which makes it a useful opposite of the CNNs in the transfer matrix:
perturbations crafted on a convolutional surrogate rely on local structure this net does not share.
"""

from __future__ import annotations

from torch import Tensor, nn

HIDDEN = (512, 256)
ARCHITECTURE = (
    f"flatten(784), linear(784->{HIDDEN[0]})-ReLU, dropout(0.2), linear({HIDDEN[0]}->{HIDDEN[1]})-ReLU, "
    f"dropout(0.2), linear({HIDDEN[1]}->10)"
)


class FashionMLP(nn.Module):
    """Takes normalised (B,1,28,28) inputs; :class:`app.ml.model.ArenaModel` does the normalising."""

    def __init__(self, in_features: int = 784, num_classes: int = 10, dropout: float = 0.2) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, HIDDEN[0]),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(HIDDEN[0], HIDDEN[1]),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(HIDDEN[1], num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self.layers(x)
        return logits
