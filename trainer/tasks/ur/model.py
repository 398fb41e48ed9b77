"""The Ur value and policy networks (docs/ur.md, section 6)."""

from __future__ import annotations

import torch
from torch import nn

INPUT_SIZE = 150
HIDDEN_SIZES = (256, 128, 64, 32)
POLICY_SIZE = 7
DROPOUT = 0.0  # the training default (UrTrainOptions.dropout); evaluation never drops


def mlp(outputs: int, hidden_sizes: tuple[int, ...] = HIDDEN_SIZES, dropout: float = DROPOUT) -> nn.Sequential:
    """150 -> 256 -> 128 -> 64 -> 32 -> outputs, ReLU and dropout after each hidden layer."""
    layers: list[nn.Module] = []
    width = INPUT_SIZE
    for hidden in hidden_sizes:
        layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
        width = hidden
    layers.append(nn.Linear(width, outputs))
    return nn.Sequential(*layers)


def linear_layers(net: nn.Sequential) -> list[nn.Linear]:
    return [m for m in net if isinstance(m, nn.Linear)]


class UrNets(nn.Module):
    """Both networks; forward gives (value in [-1, 1], P2-positive; policy logits)."""

    def __init__(self, hidden_sizes: tuple[int, ...] = HIDDEN_SIZES, dropout: float = DROPOUT) -> None:
        super().__init__()
        self.value = mlp(1, tuple(hidden_sizes), dropout)
        self.policy = mlp(POLICY_SIZE, tuple(hidden_sizes), dropout)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tanh(self.value(features)).squeeze(-1), self.policy(features)
