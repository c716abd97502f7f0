"""A small CIFAR-10 classifier with the two layer kinds whose behaviour depends on the mode:
BatchNorm (batch statistics vs running statistics) and Dropout (drops vs identity)."""

import torch.nn as nn


class SmallConvNet(nn.Module):
    def __init__(self, num_classes: int = 10, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(64, num_classes)
        )

    def forward(self, x):
        return self.classifier(self.features(x))
