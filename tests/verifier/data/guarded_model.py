"""A model file with a guarded script part: `--import` may define Net, never run the guard."""

from torch import nn

WIDTH = 12


class Net(nn.Module):
    def __init__(self, width, p=0.5):
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.bn = nn.BatchNorm1d(width)
        self.drop = nn.Dropout(p)

    def forward(self, x):
        return self.drop(self.bn(self.fc(x)))


class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.fc(x))


if __name__ == "__main__":
    raise SystemExit("the guarded __main__ block must never run under --import")
