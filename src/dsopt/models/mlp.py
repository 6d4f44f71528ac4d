"""TabularMLP: the small multilayer perceptron of the tabular tasks (chapter 04's credit default)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from dsopt.util.validation import check_number

__all__ = ["TabularMLP"]


class TabularMLP(nn.Module):
    """``n_features -> hidden[0] -> ... -> n_classes`` with ReLU and dropout after every hidden layer."""

    def __init__(self, n_features: int, n_classes: int, hidden: Sequence[int] = (64, 64), dropout: float = 0.1):
        super().__init__()
        n_features = check_number("n_features", n_features, low=1, integer=True)
        n_classes = check_number("n_classes", n_classes, low=2, integer=True)
        dropout = check_number("dropout", dropout, low=0.0, high=1.0, high_inclusive=False)
        layers, width = [], n_features
        for i, h in enumerate(hidden):
            h = check_number(f"hidden[{i}]", h, low=1, integer=True)
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
