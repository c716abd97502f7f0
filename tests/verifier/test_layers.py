"""Static layer extraction on small source files."""

from __future__ import annotations

import textwrap
from pathlib import Path

from evallint.verifier.extract import extract_layers
from evallint.verifier.layer_spec import LayerSpec


def write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def kinds(layers: tuple[LayerSpec, ...]) -> list[str]:
    return [layer.kind for layer in layers]


def line_of(path: Path, needle: str) -> int:
    return next(i for i, text in enumerate(path.read_text().splitlines(), 1) if needle in text)


def test_class_with_sequential_and_wrappers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "net.py",
        """
        import torch
        from torch import nn

        class Net(nn.Module):
            def __init__(self, p=0.5):
                super().__init__()
                self.body = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16, momentum=None), nn.ReLU(), nn.Dropout(p))
                self.head = nn.Linear(16, 2)

        model = Net(p=0.25).to("cpu")
        model = torch.compile(model)
        with torch.no_grad():
            model(torch.ones(2, 8))  # flagged
    """,
    )
    result = extract_layers(path, "model", line_of(path, "# flagged"))
    assert result.complete and result.root.startswith("class Net")
    assert kinds(result.layers) == ["Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear"]
    bn, drop = result.layers[1], result.layers[3]
    assert bn.params == {"num_features": 16, "momentum": None} and bn.line == line_of(
        path, "nn.Sequential"
    )
    assert drop.params == {"p": 0.25} and drop.mode_dependent
    assert kinds(result.mode_dependent) == ["BatchNorm1d", "Dropout"]


def test_nested_classes_modulelist_and_parameter_call_site(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "net.py",
        """
        import torch.nn as nn
        import torch.nn.functional as F

        WIDTH = 32

        class Block(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.norm = nn.LayerNorm(c)
                self.ff = nn.Linear(c, c)

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.blocks = nn.ModuleList([Block(WIDTH) for _ in range(3)])
                self.rnn = nn.LSTM(WIDTH, WIDTH, 2, dropout=0.1)

            def forward(self, x):
                return F.dropout(x, 0.2, training=self.training)

        def evaluate(model, data):
            return model(data)  # flagged

        net = Net()
        evaluate(net, None)
    """,
    )
    result = extract_layers(path, "model", line_of(path, "# flagged"))
    assert result.complete, result.unresolved
    assert kinds(result.layers) == ["LayerNorm", "Linear", "LSTM", "Dropout"]
    assert result.layers[0].params == {"normalized_shape": 32}
    assert result.layers[2].mode_dependent  # num_layers=2, dropout=0.1
    assert result.layers[3].origin == "forward" and result.layers[3].params == {"p": 0.2}


def test_self_attribute_and_sibling_module(tmp_path: Path) -> None:
    write(
        tmp_path,
        "models.py",
        """
        from torch import nn

        class Encoder(nn.Module):
            def __init__(self):
                super().__init__()
                self.bn = nn.BatchNorm2d(64, track_running_stats=False)
                self.conv = nn.Conv2d(3, 64, 3)
    """,
    )
    path = write(
        tmp_path,
        "train.py",
        """
        from models import Encoder

        class Trainer:
            def __init__(self):
                self.net = Encoder()

            def validate(self, x):
                return self.net(x)  # flagged
    """,
    )
    result = extract_layers(path, "self.net", line_of(path, "# flagged"))
    assert result.complete, result.unresolved
    assert kinds(result.layers) == ["BatchNorm2d", "Conv2d"]
    assert result.layers[0].path.endswith("models.py")
    assert (
        not result.mode_dependent
    )  # BatchNorm without running stats behaves the same in both modes


def test_torchvision_table_entry(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "tv.py",
        """
        import torchvision.models as models
        model = models.vgg16_bn(weights=None).cuda()
        model(None)  # flagged
    """,
    )
    result = extract_layers(path, "model", line_of(path, "# flagged"))
    assert result.root == "torchvision vgg16_bn"
    assert kinds(result.layers) == ["BatchNorm2d", "Dropout"]
    assert result.layers[0].origin.startswith("table: torchvision/models/vgg.py")


def test_transformers_and_timm_table(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "hf.py",
        """
        import timm
        from transformers import AutoModel
        bert = AutoModel.from_pretrained("bert-base-uncased")
        vit = timm.create_model("vit_base_patch16_224", drop_rate=0.1)
    """,
    )
    bert = extract_layers(path, "bert", 99)
    assert [(x.kind, x.params.get("p")) for x in bert.layers] == [
        ("Dropout", 0.1),
        ("LayerNorm", None),
    ]
    vit = extract_layers(path, "vit", 99)
    assert vit.mode_dependent[0].params == {"p": 0.1}


def test_unknown_constructor_is_unresolved_with_a_reason(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "x.py",
        """
        from mylib import build_model
        model = build_model("resnet")
        model(1)  # flagged
    """,
    )
    result = extract_layers(path, "model", line_of(path, "# flagged"))
    assert not result.complete and not result.layers
    assert "`build_model(...)` at x.py:3 comes from `mylib.build_model`" in result.unresolved[0]


def test_project_factory_function_is_followed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "f.py",
        """
        from torch import nn
        def make(p):
            layers = [nn.Linear(4, 4)]
            layers.append(nn.Dropout(p))
            return nn.Sequential(*layers)
        model = make(0.3)
    """,
    )
    result = extract_layers(path, "model", 99)
    assert result.complete and kinds(result.layers) == ["Linear", "Dropout"]
    assert result.layers[1].params == {"p": 0.3}


def test_missing_subject_and_unparsable_file(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.py", "def (:\n")
    assert extract_layers(path, "model", 1).unresolved
    good = write(tmp_path, "good.py", "x = 1\n")
    assert "`model`" in extract_layers(good, "model", 1).unresolved[0]
