"""A second Fashion-MNIST CNN of another family: a small pre-activation-free ResNet (He et al. 2016).

Residual blocks with batch norm and identity (or 1x1-projection) shortcuts, strided convolutions instead of
max-pooling, and global average pooling instead of a large dense head: a different inductive bias from the
VGG-style ``fashion-cnn``, so the transfer matrix measures transfer across architectures rather than between
two copies of one net. A strided stem and three stages of one block each (16/32/64 channels, at 14x14, 7x7
and 4x4) make it about 7x cheaper per image than ``fashion-cnn`` (about 2.5M multiply-adds against 18M), so it
trains in minutes even on a shared two-core CPU.
"""

from __future__ import annotations

from torch import Tensor, nn

WIDTHS = (16, 32, 64)
ARCHITECTURE = (
    "conv3x3(16, stride 2)-BN-ReLU stem (28x28 -> 14x14); 3 residual stages of one basic block each "
    "[conv3x3-BN-ReLU-conv3x3-BN + shortcut (identity, or conv1x1-BN when the shape changes), ReLU] with "
    "16/32/64 channels, stride 1/2/2 (14x14 -> 7x7 -> 4x4); global average pool; linear(64->10)"
)


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        result: Tensor = self.relu(out + self.shortcut(x))
        return result


class FashionResNet(nn.Module):
    """Takes normalised (B,1,28,28) inputs; :class:`app.ml.model.ArenaModel` does the normalising."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, WIDTHS[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(WIDTHS[0]),
            nn.ReLU(inplace=True),
        )
        blocks = []
        channels = WIDTHS[0]
        for width, stride in zip(WIDTHS, (1, 2, 2), strict=True):
            blocks.append(BasicBlock(channels, width, stride))
            channels = width
        self.stages = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        features = self.pool(self.stages(self.stem(x))).flatten(1)
        logits: Tensor = self.fc(features)
        return logits
