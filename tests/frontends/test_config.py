"""`[tool.evallint]` loading: discovery, selection, per-file ignores, excludes, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from evallint.engine.config import DEFAULT_EXCLUDE, Config, ConfigError, clear_cache, load_config


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    clear_cache()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_when_no_pyproject(tmp_path: Path) -> None:
    config = load_config(tmp_path / "train.py")
    assert config == Config()
    assert config.exclude == DEFAULT_EXCLUDE
    assert config.is_enabled("EVL001", str(tmp_path / "train.py"))


def test_all_keys_are_read(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        """
[tool.evallint]
select = ["EVL0"]
ignore = ["evl003"]
per-file-ignores = { "tests/*.py" = ["EVL002"] }
exclude = ["legacy"]
extend-exclude = ["gen_*.py"]
eval-names = ["holdout"]
module-factories = ["timm.create_model"]
mode-switching-hooks = ["on_validation_step"]
""",
    )
    config = load_config(tmp_path / "pkg" / "train.py")
    assert config == Config(
        select=("EVL0",),
        ignore=("EVL003",),
        per_file_ignores=(("tests/*.py", ("EVL002",)),),
        exclude=("legacy",),
        extend_exclude=("gen_*.py",),
        eval_names=("holdout",),
        module_factories=("timm.create_model",),
        mode_switching_hooks=("on_validation_step",),
        root=tmp_path,
    )


def test_walks_past_pyproject_without_the_table(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.evallint]\nignore = ["EVL002"]\n')
    write(tmp_path / "sub" / "pyproject.toml", '[project]\nname = "sub"\n')
    assert load_config(tmp_path / "sub" / "a.py").ignore == ("EVL002",)


def test_nearest_table_wins(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.evallint]\nignore = ["EVL002"]\n')
    write(tmp_path / "sub" / "pyproject.toml", '[tool.evallint]\nignore = ["EVL001"]\n')
    config = load_config(tmp_path / "sub")
    assert config.ignore == ("EVL001",)
    assert config.root == tmp_path / "sub"


def test_unrelated_broken_pyproject_is_skipped(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[project\nname = \n")
    assert load_config(tmp_path / "a.py") == Config()


def test_cached_per_directory(tmp_path: Path) -> None:
    pyproject = write(tmp_path / "pyproject.toml", '[tool.evallint]\nignore = ["EVL002"]\n')
    first = load_config(tmp_path / "a.py")
    pyproject.write_text('[tool.evallint]\nignore = ["EVL001"]\n', encoding="utf-8")
    assert load_config(tmp_path / "b.py") is first
    clear_cache()
    assert load_config(tmp_path / "b.py").ignore == ("EVL001",)


@pytest.mark.parametrize(
    ("select", "ignore", "code", "enabled"),
    [
        (("EVL",), (), "EVL001", True),
        (("EVL",), ("EVL0",), "EVL001", False),
        (("EVL",), ("EVL0",), "EVL999", True),
        (("EVL002",), (), "EVL001", False),
        (("EVL001",), ("EVL0",), "EVL001", True),  # the more specific select wins
        (("EVL0",), ("EVL0",), "EVL001", False),  # a tie goes to ignore
    ],
)
def test_select_and_ignore_prefixes(
    select: tuple[str, ...], ignore: tuple[str, ...], code: str, enabled: bool
) -> None:
    assert Config(select=select, ignore=ignore).is_enabled(code, "x.py") is enabled


def test_per_file_ignores_are_relative_to_the_config(tmp_path: Path) -> None:
    config = Config(
        per_file_ignores=(
            ("tests/*.py", ("EVL002",)),
            ("conftest.py", ("EVL0",)),
            ("scripts/**", ("EVL001",)),
        ),
        root=tmp_path,
    )
    assert not config.is_enabled("EVL002", str(tmp_path / "tests" / "test_a.py"))
    assert config.is_enabled("EVL001", str(tmp_path / "tests" / "test_a.py"))
    assert config.is_enabled("EVL002", str(tmp_path / "src" / "tests" / "test_a.py"))  # anchored
    assert not config.is_enabled("EVL003", str(tmp_path / "deep" / "conftest.py"))  # basename
    assert not config.is_enabled("EVL001", str(tmp_path / "scripts" / "a" / "b.py"))
    assert config.is_enabled("EVL002", str(tmp_path / "scripts" / "a" / "b.py"))


def test_exclude_is_gitignore_style(tmp_path: Path) -> None:
    config = Config(
        exclude=("build", "/legacy/", "gen_*.py"), extend_exclude=("data/**/*.py",), root=tmp_path
    )
    assert config.is_excluded(tmp_path / "build" / "lib" / "a.py")
    assert config.is_excluded(tmp_path / "src" / "build")
    assert config.is_excluded(tmp_path / "legacy" / "a.py")
    assert not config.is_excluded(tmp_path / "src" / "legacy" / "a.py")
    assert config.is_excluded(tmp_path / "src" / "gen_model.py")
    assert config.is_excluded(tmp_path / "data" / "x" / "y" / "z.py")
    assert config.is_excluded(tmp_path / "data" / "z.py")
    assert not config.is_excluded(tmp_path / "src" / "builder.py")
    assert Config(root=tmp_path).is_excluded(tmp_path / ".venv" / "lib" / "torch" / "nn.py")


@pytest.mark.parametrize(
    ("body", "key", "cause"),
    [
        ('selct = ["EVL"]', "selct", "unknown key"),
        ('select = "EVL001"', "select", "must be a list of strings, got string 'EVL001'"),
        ("ignore = [1]", "ignore", "must be a list of strings, got an array holding int 1"),
        ('ignore = ["E501"]', "ignore", "'E501' is not an evallint code or prefix"),
        ('per-file-ignores = ["x"]', "per-file-ignores", "must be a table"),
        (
            'per-file-ignores = { "t/*.py" = ["X1"] }',
            "per-file-ignores.t/*.py",
            "'X1' is not an evallint code",
        ),
        ('eval-names = ["not a name"]', "eval-names", "is not a Python identifier"),
        ('module-factories = ["timm..x"]', "module-factories", "is not a dotted name"),
    ],
)
def test_errors_are_one_line_naming_file_and_key(
    tmp_path: Path, body: str, key: str, cause: str
) -> None:
    pyproject = write(tmp_path / "pyproject.toml", f"[tool.evallint]\n{body}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "a.py")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{pyproject}: [tool.evallint] {key}: ")
    assert cause in message
    assert caught.value.key == key


def test_invalid_toml_is_one_line(tmp_path: Path) -> None:
    pyproject = write(tmp_path / "pyproject.toml", "[tool.evallint]\nselect = [\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(f"{pyproject}: [tool.evallint]: invalid TOML: ")


def test_table_of_wrong_type(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", 'tool = { evallint = "on" }\n')
    with pytest.raises(ConfigError, match=r"must be a table, got string"):
        load_config(tmp_path)
