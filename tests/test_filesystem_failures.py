"""File-system failures (read-only, no space, permission denied) in the subcommands: one line naming the path
and the cause, exit status 2, nothing half-written. Tests run as root, where chmod does not stop a write, so
the failures are raised at the write call (monkeypatch) or come from a path that cannot be a folder."""

from __future__ import annotations

import errno
import json
import os
import pathlib
import tempfile

import numpy as np
import pytest
import torch

from tests.training.synthetic import make_prepared
from wiml.cli import main as wiml_main
from wiml.errors import OutputError
from wiml.networks.checkpoint import save_checkpoint, save_training_state
from wiml.networks.fpsnet import FPSNet, FPSNetConfig
from wiml.utils import atomic_path, atomic_write_text, staged_output

TINY = ["--set", "model.base_width=4", "--set", "model.depth=3", "--set", "trainer.batch_size=4",
        "--set", "trainer.progress=false"]  # fmt: skip


def _train_weak_argv(prepared: pathlib.Path, out: pathlib.Path) -> list[str]:
    """``wiml train-weak`` on ``prepared`` into ``out``: one tiny epoch on the CPU."""
    return [
        "train-weak",
        "--data",
        str(prepared),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--epochs",
        "1",
        *TINY,
    ]


def _os_error(code: int, filename=None) -> OSError:
    return OSError(code, os.strerror(code), filename) if filename else OSError(code, os.strerror(code))


def _fail_writes(monkeypatch, code: int, text: bool = True) -> None:
    """Every Path.write_bytes (and, with ``text``, write_text) fails with ``code`` (ENOSPC: a full disk)."""

    def fail(self, *args, **kwargs):
        raise _os_error(code)

    monkeypatch.setattr(pathlib.Path, "write_bytes", fail)
    if text:
        monkeypatch.setattr(pathlib.Path, "write_text", fail)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return make_prepared(tmp_path_factory.mktemp("fs") / "data")


@pytest.mark.parametrize(
    ("code", "name"), [(errno.ENOSPC, "ENOSPC"), (errno.EROFS, "EROFS"), (errno.EACCES, "EACCES")]
)
def test_atomic_write_names_path_and_cause_and_keeps_the_old_file(tmp_path, monkeypatch, code, name):
    path = tmp_path / "summary.json"
    path.write_text("old")
    _fail_writes(monkeypatch, code)
    with pytest.raises(OutputError) as info:
        atomic_write_text(path, "new")
    assert str(info.value) == f"{path}: cannot write: {os.strerror(code)} [{name}]"
    monkeypatch.undo()
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_atomic_path_in_an_unwritable_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=f"{tmp_path / 'file' / 'sub' / 'a.txt'}: cannot write"):
        with atomic_path(tmp_path / "file" / "sub" / "a.txt") as tmp:
            tmp.write_text("never")


def test_checkpoint_and_state_on_a_full_disk(tmp_path, monkeypatch):
    model = FPSNet(FPSNetConfig(base_width=4, depth=2))
    _fail_writes(monkeypatch, errno.ENOSPC)
    with pytest.raises(
        OutputError, match=r"best.safetensors: cannot write: No space left on device \[ENOSPC\]"
    ):
        save_checkpoint(tmp_path / "best.safetensors", model)
    with pytest.raises(OutputError, match=r"state.pt: cannot write: No space left on device \[ENOSPC\]"):
        save_training_state(tmp_path / "state.pt", {"epoch": 1, "model": model.state_dict()})
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_staged_output_keeps_out_unchanged_on_failure(tmp_path):
    out = tmp_path / "test"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    (out / "keep.txt").write_text("mine")
    with pytest.raises(RuntimeError):
        with staged_output(out, last=("summary.json",)) as stage:
            (stage / "per_slice.csv").write_text("a")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test"]
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt", "summary.json"]
    with staged_output(out, last=("summary.json",)) as stage:
        (stage / "summary.json").write_text('{"new": 1}')
        (stage / "predictions").mkdir()
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt", "predictions", "summary.json"]
    assert json.loads((out / "summary.json").read_text()) == {"new": 1}


def _one_line(capsys) -> str:
    """The error line of a failed subcommand (log lines aside); no traceback anywhere."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1, err
    return lines[0]


def test_train_weak_full_disk_one_line(prepared, tmp_path, monkeypatch, capsys):
    out = tmp_path / "weak"
    _fail_writes(monkeypatch, errno.ENOSPC)
    assert wiml_main.main(_train_weak_argv(prepared, out)) == 2
    line = _one_line(capsys)
    assert line.startswith("wiml train-weak: error: ") and "No space left on device [ENOSPC]" in line
    assert str(out) in line and "enforce fail" not in line


def test_train_weak_full_disk_at_the_checkpoint(prepared, tmp_path, monkeypatch, capsys):
    """The disk fills up when the weights are written (torch's own writer would say "enforce fail")."""
    out = tmp_path / "weak"
    _fail_writes(monkeypatch, errno.ENOSPC, text=False)
    assert wiml_main.main(_train_weak_argv(prepared, out)) == 2
    line = _one_line(capsys)
    assert "No space left on device [ENOSPC]" in line and "enforce fail" not in line
    assert f"{out}/" in line and (".safetensors" in line or "state.pt" in line)


def test_train_weak_read_only_one_line(prepared, tmp_path, monkeypatch, capsys):
    def read_only(*args, **kwargs):
        raise _os_error(errno.EROFS)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    out = tmp_path / "weak"
    assert wiml_main.main(_train_weak_argv(prepared, out)) == 2
    line = _one_line(capsys)
    assert str(out) in line and "Read-only file system [EROFS]" in line


def test_train_weak_out_under_a_file(prepared, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert wiml_main.main(_train_weak_argv(prepared, blocker / "weak")) == 2
    assert str(blocker) in _one_line(capsys)


@pytest.fixture()
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = FPSNet(FPSNetConfig(base_width=4, depth=2))
    return save_checkpoint(tmp_path / "ckpt" / "best.safetensors", model, {"kind": "msl", "image_size": 32})


def test_wiml_test_failure_leaves_no_partial_folder(prepared, checkpoint, tmp_path, monkeypatch, capsys):
    import wiml.evaluation.evaluate as ev

    out = tmp_path / "test"
    argv = ["test", "--data", str(prepared), "--checkpoint", str(checkpoint), "--out", str(out), "--device", "cpu",
            "--quiet"]  # fmt: skip
    assert wiml_main.main(argv) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert "summary.json" in before

    def full_disk(path, *args, **kwargs):  # the disk fills up while the overlays are written
        raise OutputError(path, _os_error(errno.ENOSPC))

    monkeypatch.setattr(ev, "write_overlay", full_disk)
    assert wiml_main.main(argv) == 2
    assert "No space left on device [ENOSPC]" in _one_line(capsys)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before  # the last complete run
    assert [p.name for p in tmp_path.iterdir() if ".partial-" in p.name] == []
    new_out = tmp_path / "fresh"
    argv_new = ["test", "--data", str(prepared), "--checkpoint", str(checkpoint), "--out", str(new_out),
                "--device", "cpu", "--quiet"]  # fmt: skip
    assert wiml_main.main(argv_new) == 2
    capsys.readouterr()
    assert not new_out.exists()  # no partial test/ without summary.json


def test_prepare_read_only_output_one_line(tmp_path, monkeypatch, capsys):
    from tests.data.helpers import write_lits

    raw = write_lits(tmp_path / "raw", n=2)

    def read_only(*args, **kwargs):
        raise _os_error(errno.EROFS, str(tmp_path))

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    assert (
        wiml_main.main(["prepare", "--input", str(raw), "--out", str(tmp_path / "data"), "--no-progress"])
        == 2
    )
    line = _one_line(capsys)
    assert str(tmp_path) in line and "Read-only file system [EROFS]" in line
    assert not (tmp_path / "data").exists()


def test_image_write_failure_is_output_error(tmp_path, monkeypatch):
    """SimpleITK's writer fails on a full disk with a RuntimeError; the file is still named, in one line."""
    import SimpleITK as sitk

    from wiml.data.io import write_volume

    def itk_fails(*args, **kwargs):
        raise RuntimeError(
            "Exception thrown in SimpleITK ImageFileWriter_Execute: ...\nITK ERROR: write failed"
        )

    monkeypatch.setattr(sitk, "WriteImage", itk_fails)
    path = tmp_path / "pred.nii.gz"
    with pytest.raises(OutputError) as info:
        write_volume(path, np.zeros((2, 2, 2), np.uint8))
    assert str(info.value).startswith(
        f"{path}: cannot write: SimpleITK could not write it"
    ) and "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []
