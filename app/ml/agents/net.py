"""The Q-network: a small MLP from the normalised state to one Q-value per action, saved as safetensors."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

STATE_SIZE = 4
ACTION_COUNT = 2
HIDDEN_SIZES = (128, 128)


class QNetwork(nn.Module):
    """Linear-ReLU-Linear-ReLU-Linear: Q(s, a) for both actions of CartPole, on the normalised state."""

    def __init__(self, hidden_sizes: tuple[int, ...] = HIDDEN_SIZES) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = STATE_SIZE
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, ACTION_COUNT))
        self.layers = nn.Sequential(*layers)

    def forward(self, normalised_state: torch.Tensor) -> torch.Tensor:
        return self.layers(normalised_state)


def describe(net: QNetwork) -> str:
    sizes = [layer.out_features for layer in net.layers if isinstance(layer, nn.Linear)]
    inner = "".join(f"linear({width})-ReLU, " for width in sizes[:-1])
    return f"{inner}linear({sizes[-1]})"


def parameter_count(net: QNetwork) -> int:
    return sum(parameter.numel() for parameter in net.parameters())


def save_agent(net: QNetwork, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({name: tensor.contiguous() for name, tensor in net.state_dict().items()}, str(path))


def load_agent(path: Path) -> QNetwork:
    """The checkpoint as a frozen network in eval mode (its hidden sizes read from the weights' shapes)."""
    state = load_file(str(path))
    weights = sorted((key for key in state if key.endswith(".weight")), key=lambda key: int(key.split(".")[1]))
    hidden = tuple(state[key].shape[0] for key in weights[:-1])
    net = QNetwork(hidden)
    net.load_state_dict(state)
    net.eval()
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    return net
