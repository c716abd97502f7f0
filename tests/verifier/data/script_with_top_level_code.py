"""A script whose top level builds data: --import must refuse it, never run it."""

from torch import nn


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(4, 4)


raise RuntimeError("top-level code ran")
