"""A script whose top level fails: --import runs it in a child process and reports the error."""

from torch import nn


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(4, 4)


raise RuntimeError("top-level code ran")
