"""RunLock: a second process on the same folder is refused at once, naming the holder; a stale lock is taken."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from wiml.runlock import RunLock, RunLockedError, holder

HOLD = """
import sys, time
from pathlib import Path
from wiml.runlock import RunLock
lock = RunLock(sys.argv[1], "test holder").acquire()
Path(sys.argv[2]).write_text("ready")
time.sleep(120)
"""


@pytest.fixture
def other_process(tmp_path, project_root):
    """Start a process that holds the lock of ``tmp_path / 'run'``; yields (run folder, process)."""
    run, ready = tmp_path / "run", tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": str(project_root)}
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run), str(ready)], env=env)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the lock-holding process did not start")
        time.sleep(0.05)
    yield run, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_second_process_is_refused_naming_the_pid(other_process):
    run, proc = other_process
    assert holder(run / "run.lock")["pid"] == proc.pid
    with pytest.raises(RunLockedError, match=rf"in use by PID {proc.pid} \(test holder"):
        RunLock(run).acquire()
    with pytest.raises(RunLockedError, match=rf"PID {proc.pid}"):  # a trainer in a sub-folder of the run
        RunLock(run / "weak").acquire()


def test_killed_holder_leaves_a_stale_lock_that_is_taken_over(other_process, caplog):
    run, proc = other_process
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads((run / "run.lock").read_text())["pid"] == proc.pid  # the file is still there
    assert holder(run / "run.lock") is None
    with caplog.at_level(logging.WARNING, logger="wiml.runlock"):
        with RunLock(run, "second") as lock:
            assert holder(lock.path)["pid"] == os.getpid()
    assert f"stale lock of PID {proc.pid}" in caplog.text
    assert holder(run / "run.lock") is None  # released


def test_same_process_nested_and_sub_folder_busy(tmp_path):
    with RunLock(tmp_path / "run"):
        with RunLock(tmp_path / "run" / "weak"):  # this process holds the parent: allowed
            pass
    with RunLock(tmp_path / "run" / "weak"):
        with RunLock(tmp_path / "run"):  # a sub-folder held by this same process: allowed
            pass
    lock = RunLock(tmp_path / "x").acquire()
    lock.release()
    lock.release()  # twice is fine
    assert (tmp_path / "x" / "run.lock").read_text() == ""


def test_pipeline_and_trainer_exit_at_once_naming_the_holder(
    other_process, project_root, tiny_prepared, capsys
):
    from wiml.cli import pipeline as pipeline_cli
    from wiml.cli import train_msl as train_msl_cli

    run, proc = other_process
    argv = ["--config", str(project_root / "configs" / "demo.yaml"), "--out", str(run)]
    assert pipeline_cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert f"in use by PID {proc.pid}" in err and len(err.splitlines()) == 1
    assert not (run / "config.yaml").exists() and not (run / "raw").exists()  # nothing touched
    trainer = [
        "--data",
        str(tiny_prepared),
        "--out",
        str(run / "msl"),
        "--init",
        "scratch",
        "--k",
        "2",
        "--quiet",
    ]
    assert train_msl_cli.main(trainer) == 2
    err = capsys.readouterr().err.strip()
    assert f"in use by PID {proc.pid}" in err and len(err.splitlines()) == 1
    assert not (run / "msl").exists()
