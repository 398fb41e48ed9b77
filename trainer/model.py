"""The Ur value and policy networks (shared/ur-spec.md section 6)."""

from __future__ import annotations

import torch
from torch import nn

INPUT_SIZE = 150
HIDDEN_SIZES = (256, 128, 64, 32)
POLICY_SIZE = 7
DROPOUT = 0.1


def mlp(outputs: int) -> nn.Sequential:
    """150 -> 256 -> 128 -> 64 -> 32 -> outputs, ReLU and dropout after each hidden layer."""
    layers: list[nn.Module] = []
    width = INPUT_SIZE
    for hidden in HIDDEN_SIZES:
        layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(DROPOUT)]
        width = hidden
    layers.append(nn.Linear(width, outputs))
    return nn.Sequential(*layers)


def linear_layers(net: nn.Sequential) -> list[nn.Linear]:
    return [m for m in net if isinstance(m, nn.Linear)]


class UrNets(nn.Module):
    """Both networks; forward gives (value in [-1, 1], P2-positive; policy logits)."""

    def __init__(self) -> None:
        super().__init__()
        self.value = mlp(1)
        self.policy = mlp(POLICY_SIZE)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tanh(self.value(features)).squeeze(-1), self.policy(features)
