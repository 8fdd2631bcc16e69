"""The option helpers the subcommands share (wiml.cli.main)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from wiml.cli.main import (
    add_overrides_argument,
    add_training_arguments,
    combine_overrides,
    given_overrides,
    trainer_overrides,
)


def test_overrides_argument_collects_repeated_set_in_order() -> None:
    parser = argparse.ArgumentParser()
    add_overrides_argument(parser, "override")
    assert parser.parse_args([]).overrides == []
    assert parser.parse_args(["--set", "a=1", "--set", "b.c=x"]).overrides == ["a=1", "b.c=x"]


def test_trainer_overrides_only_for_given_options() -> None:
    parser = argparse.ArgumentParser()
    add_training_arguments(parser, "override")
    args = parser.parse_args([])
    assert trainer_overrides(args) == []
    assert (args.resume, args.overwrite, args.overrides) == (False, False, [])
    args = parser.parse_args(["--epochs", "3", "--device", "cpu", "--resume", "--set", "optim.lr=0.1"])
    assert trainer_overrides(args) == ["trainer.device=cpu", "trainer.epochs=3"]
    assert args.resume and args.overrides == ["optim.lr=0.1"]
    args = parser.parse_args(["--seed", "0"])
    assert trainer_overrides(args) == ["trainer.seed=0"]  # 0 is given, not absent


def test_training_arguments_reject_a_non_integer_seed() -> None:
    parser = argparse.ArgumentParser()
    add_training_arguments(parser, "override")
    with pytest.raises(SystemExit):
        parser.parse_args(["--seed", "one"])


def test_given_overrides_skip_absent_options_and_make_paths_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    flags = {"k": 0, "split": None, "wia_dir": Path("runs/wia"), "mode": "mixed"}
    assert given_overrides(flags) == ["k=0", f"wia_dir={tmp_path.resolve() / 'runs' / 'wia'}", "mode=mixed"]


def test_a_named_option_and_set_may_not_disagree() -> None:
    from wiml.errors import ConfigError

    assert combine_overrides(["strong.k=5"], ["optim.lr=0.1", "strong.k=5"]) == [
        "strong.k=5",
        "optim.lr=0.1",
        "strong.k=5",
    ]
    with pytest.raises(ConfigError, match=r"strong\.k is given twice: '5' .* '10'"):
        combine_overrides(["strong.k=5"], ["strong.k = 10"])


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("train_msl", ["--data", "d", "--out", "o", "--k", "5", "--set", "strong.k=10"]),
        ("train_weak", ["--data", "d", "--out", "o", "--device", "cpu", "--set", "trainer.device=cuda"]),
        (
            "wia_sim",
            ["--data", "d", "--out", "o", "--checkpoint", "none", "--split", "val", "--set", "split=test"],
        ),
        ("curve", ["--data", "d", "--out", "o", "--device", "cpu", "--set", "device=cuda"]),
    ],
)
def test_every_command_refuses_a_contradiction(command, argv, capsys, tmp_path, monkeypatch) -> None:
    import importlib

    monkeypatch.chdir(tmp_path)
    main = importlib.import_module(f"wiml.cli.{command}").main
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "given twice" in err and len(err.strip().splitlines()) == 1
