"""Train a small CNN on CIFAR-10 and report validation accuracy every epoch.

This script runs, trains, and prints plausible numbers, and it has three mistakes that
silently corrupt them. `evallint examples/` finds all three.
"""

import argparse

import torch
import torch.nn.functional as F
from model import SmallConvNet
from torch.utils.data import DataLoader
from torchvision import datasets, transforms


def evaluate(model, loader, device):
    """Accuracy on `loader`. Forgets both model.eval() and torch.no_grad()."""
    correct = total = 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        logits = model(images)
        correct += (logits.argmax(dim=1) == labels).sum().item()
        total += labels.numel()
    return correct / total


def validate(model, loader, device):
    """Validation loss; switches to eval mode but never back."""
    model.eval()
    with torch.no_grad():
        losses = [F.cross_entropy(model(x.to(device)), y.to(device)).item() for x, y in loader]
    return sum(losses) / len(losses)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    to_tensor = transforms.ToTensor()
    train_loader = DataLoader(
        datasets.CIFAR10("data", train=True, download=True, transform=to_tensor),
        batch_size=128,
        shuffle=True,
    )
    val_loader = DataLoader(
        datasets.CIFAR10("data", train=False, transform=to_tensor), batch_size=256
    )

    model = SmallConvNet().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)

    model.train()
    for epoch in range(args.epochs):
        for images, labels in train_loader:
            images, labels = images.to(device), labels.to(device)
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        val_loss = validate(model, val_loader, device)
        print(f"epoch {epoch}: val loss {val_loss:.3f}")

    model.train()
    print(f"final accuracy: {evaluate(model, val_loader, device):.3f}")


if __name__ == "__main__":
    main()
