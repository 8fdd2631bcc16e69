"""A training folder holding a model is refused without --resume / --overwrite; --overwrite keeps best.vN."""

from __future__ import annotations

import json

import pytest

from wiml.cli.train_weak import main as train_weak_main
from wiml.errors import InputError
from wiml.layout import TrainingLayout
from wiml.training.folder import claim_training_folder


def _fake_model(folder, tag):
    files = TrainingLayout(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files.best.write_bytes(tag.encode())
    files.best_sidecar.write_text(
        json.dumps(
            {
                "epoch": 10,
                "monitor": "auc",
                "metrics": {"val_auc": 0.909},
                "run_config": {"trainer": {"epochs": 10}},
            }
        )
    )
    for path in (files.last, files.state, files.log):
        path.write_bytes(b"x")
    return files


def test_refuse_resume_overwrite(tmp_path):
    files = _fake_model(tmp_path / "weak", "first")
    with pytest.raises(
        InputError, match=r"holds a trained model \(best.safetensors, epoch 10 of 10, val_auc 0.909\)"
    ):
        claim_training_folder(files.root)
    with pytest.raises(InputError, match="not both"):
        claim_training_folder(files.root, resume=True, overwrite=True)
    assert claim_training_folder(files.root, resume=True) is None and files.best.read_bytes() == b"first"
    kept = claim_training_folder(files.root, overwrite=True)
    assert kept == files.previous_best(1) and kept.read_bytes() == b"first"
    assert json.loads(kept.with_suffix(".json").read_text())["metrics"]["val_auc"] == 0.909
    assert not any(p.exists() for p in (files.best, files.last, files.state, files.log))
    _fake_model(files.root, "second")
    assert claim_training_folder(files.root, overwrite=True) == files.previous_best(2)
    assert (
        files.previous_best(1).read_bytes() == b"first" and files.previous_best(2).read_bytes() == b"second"
    )
    assert claim_training_folder(tmp_path / "new") is None  # an empty or new folder needs nothing


def test_unfinished_state_is_refused_too(tmp_path):
    files = TrainingLayout(tmp_path / "w")
    files.root.mkdir()
    files.state.write_bytes(b"x")
    with pytest.raises(InputError, match="state.pt of an unfinished run"):
        claim_training_folder(files.root)


def test_cli_refuses_a_finished_folder(tmp_path, capsys):
    """The failure the issue measured: train-weak into a finished run replaced its best model."""
    files = _fake_model(tmp_path / "weak", "first")
    argv = ["--data", str(tmp_path / "data"), "--out", str(files.root), "--epochs", "1"]
    from tests.training.synthetic import make_prepared

    make_prepared(tmp_path / "data")
    assert train_weak_main(argv) == 2
    err = capsys.readouterr().err
    assert "holds a trained model" in err and "--resume" in err and "--overwrite" in err
    assert files.best.read_bytes() == b"first"


def test_cli_overwrite_keeps_the_previous_best_and_resume_continues(tmp_path, capsys):
    from tests.training.synthetic import make_prepared

    data = make_prepared(tmp_path / "data")
    out = tmp_path / "weak"
    small = ["model.base_width=4", "model.depth=3", "trainer.batch_size=4", "trainer.progress=false"]
    argv = ["--data", str(data), "--out", str(out), "--device", "cpu", "--quiet"]
    argv += [a for s in small for a in ("--set", s)]
    assert train_weak_main([*argv, "--epochs", "1"]) == 0
    files = TrainingLayout(out)
    first = files.best.read_bytes()
    assert train_weak_main([*argv, "--epochs", "1"]) == 2  # refused, nothing touched
    assert files.best.read_bytes() == first
    assert train_weak_main([*argv, "--epochs", "1", "--seed", "5", "--overwrite"]) == 0
    assert files.previous_best(1).read_bytes() == first and files.best.is_file()
    assert json.loads(files.previous_best(1).with_suffix(".json").read_text())["epoch"] == 1
    assert train_weak_main([*argv, "--epochs", "2", "--seed", "5", "--resume"]) == 0
    assert json.loads(files.last_sidecar.read_text())["epoch"] == 2
    capsys.readouterr()
