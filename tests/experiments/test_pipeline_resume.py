"""The pipeline skips steps with valid outputs, redoes a step whose output is corrupt (and every later step)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wiml.data.io import write_slice, write_volume
from wiml.data.slices import save_slice, write_manifest
from wiml.errors import InputError, WimlError
from wiml.evaluation.report import terminal_summary, write_report
from wiml.experiments.pipeline import PipelineConfig, check_prepared, check_training, run_pipeline
from wiml.networks.checkpoint import save_checkpoint
from wiml.networks.fpsnet import FPSNet, FPSNetConfig


def write_fake_prepared(out, positive: int) -> None:
    """Patient p (train): one empty slice; patient q (test): ``positive`` slices with a 2 x 2 target, the slices
    the robot WIA labels (the default ``wia.split`` is test)."""
    rows = []
    for pid, split, n, fg in (("p", "train", 1, False), ("q", "test", positive, True)):
        for i in range(n):
            mask = np.zeros((8, 8), np.uint8)
            mask[2:4, 2:4] = int(fg)
            rel = f"slices/{pid}/{pid}_{i:04d}.npz"
            save_slice(out / rel, np.zeros((1, 8, 8), np.float32), mask)
            rows.append({"patient_id": pid, "slice_index": i, "file": rel, "tag": int(fg), "has_mask": 1,
                         "split": split, "spacing_mm": "", "source": "x"})  # fmt: skip
    write_manifest(out / "manifest.csv", rows)


class FakeRunner:
    """Writes minimal valid outputs for each step and records the calls ``(step, resume)``."""

    def __init__(self, epochs=2, positive=6):
        self.calls = []
        self.epochs = epochs
        self.positive = positive

    def __call__(self, command, config, layout, resume):
        self.calls.append((command, resume))
        out = layout.root if command in ("test", "report") else layout.step_dir(command)
        if command == "make-demo":
            write_volume(out / "volume-0.nii", np.zeros((2, 4, 4), np.int16))
            write_volume(out / "segmentation-0.nii", np.zeros((2, 4, 4), np.uint8))
        elif command == "prepare":
            write_fake_prepared(out, self.positive)
        elif command in ("train-weak", "train-msl"):
            model = FPSNet(FPSNetConfig(base_width=2, depth=2))
            for name in ("best", "last"):
                save_checkpoint(
                    out / f"{name}.safetensors",
                    model,
                    {
                        "kind": command,
                        "epoch": self.epochs,
                        "metrics": {"val_dice": 0.5},
                        "run_config": {"trainer": {"epochs": 2}},
                    },
                )
        elif command in ("cam", "wia"):
            (out).mkdir(parents=True, exist_ok=True)
            (out / "summary.json").write_text(json.dumps({"n_slices": 1}))
            if command == "wia":
                write_slice(out / "result" / "strong_label" / "p_0000.png", np.zeros((8, 8), np.uint8))
        elif command == "test":
            (out / "test").mkdir(parents=True, exist_ok=True)
            (out / "test" / "summary.json").write_text("{}")
            (out / "test" / "per_slice.csv").write_text("name\n")
        elif command == "report":
            write_report(out)
        return 0

    def commands(self):
        return [c for c, _ in self.calls]


ALL = ["make-demo", "prepare", "train-weak", "cam", "wia", "train-msl", "test", "report"]


def test_skip_finished_and_redo_corrupt(tmp_path):
    run, cfg, fake = tmp_path / "run", PipelineConfig(), FakeRunner()
    first = run_pipeline(cfg, run, action=fake)
    assert fake.commands() == ALL and all(s["status"] == "done" for s in first["steps"].values())
    assert (run / "report" / "report.md").is_file()

    fake.calls.clear()
    second = run_pipeline(cfg, run, action=fake)  # everything valid: nothing runs
    assert fake.commands() == [] and all(s["status"] == "skipped" for s in second["steps"].values())

    weights = run / "weak" / "best.safetensors"  # corrupt the weak model (truncate)
    weights.write_bytes(weights.read_bytes()[:100])
    assert "truncated" in check_training(run / "weak")
    fake.calls.clear()
    third = run_pipeline(cfg, run, action=fake)
    assert fake.commands() == ALL[2:]  # weak and every later step redone
    assert third["steps"]["prepare"]["status"] == "skipped"
    assert check_training(run / "weak") is None


def test_interrupted_training_is_resumed(tmp_path):
    run, cfg = tmp_path / "run", PipelineConfig(steps=["make-demo", "prepare", "train-weak"])
    with pytest.raises(WimlError, match="interrupted"):  # stopped after epoch 1 of 2
        run_pipeline(cfg, run, action=FakeRunner(epochs=1))
    assert "interrupted" in check_training(run / "weak")
    from wiml.networks.checkpoint import save_training_state

    save_training_state(run / "weak" / "state.pt", {"epoch": 1, "model": {}})
    fake = FakeRunner(epochs=2)
    run_pipeline(cfg, run, action=fake)
    assert fake.calls == [("train-weak", True)]


def test_corrupt_slice_redoes_prepare_and_failure_is_reported(tmp_path):
    run, fake = tmp_path / "run", FakeRunner()
    cfg = PipelineConfig(steps=["make-demo", "prepare"])
    run_pipeline(cfg, run, action=fake)
    (run / "data" / "slices" / "p" / "p_0000.npz").write_bytes(b"not a zip")
    assert "corrupt" in check_prepared(run / "data")
    fake.calls.clear()
    run_pipeline(cfg, run, action=fake)
    assert fake.commands() == ["prepare"]

    def failing(command, config, layout, resume):
        raise InputError("no volumes found", layout.raw)

    with pytest.raises(WimlError, match="'prepare' failed: .*no volumes found"):
        run_pipeline(cfg, run, force=["prepare"], action=failing)


def test_report_and_summary_tolerate_missing_parts(tmp_path):
    run = tmp_path / "empty_run"
    run.mkdir()
    path = write_report(run)
    assert "(no MSL checkpoint)" in path.read_text(encoding="utf-8")
    assert str(run) in terminal_summary(run)


def test_report_names_its_own_step_as_this_report(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    steps = {"train-weak": {"status": "done", "seconds": 3.0}, "report": {"status": "running"}}
    (run / "pipeline.json").write_text(json.dumps({"steps": steps}), encoding="utf-8")
    text = write_report(run).read_text(encoding="utf-8")
    assert "| train-weak | done | 3" in text
    assert "| report | this report |" in text
    assert "running" not in text


@pytest.mark.parametrize(("k", "ok"), [(6, True), (7, False), (1000, False)])
def test_k_larger_than_the_slices_available_is_refused_before_training(tmp_path, k, ok):
    from wiml.errors import ConfigError

    run, fake = tmp_path / "run", FakeRunner(positive=6)
    cfg = PipelineConfig(k=k)
    cfg.wia.select = k  # load_pipeline_config derives it from k
    if ok:
        run_pipeline(cfg, run, action=fake)
        assert "wia" in fake.commands()
        return
    with pytest.raises(ConfigError) as info:
        run_pipeline(cfg, run, action=fake)
    assert fake.commands() == ["make-demo", "prepare"]  # nothing trained
    msg = str(info.value)
    assert msg.startswith(f"k = {k} is more than the prepared data allow: select = {k}: only 6 slice(s)")
    assert "\n" not in msg


def _demo_config(project_root, run, *overrides):
    from wiml.experiments.pipeline import load_pipeline_config

    # the fake prepared data hold their target slices in the test split; the fake steps make no baselines
    steps = "steps=[" + ",".join(ALL) + "]"
    return load_pipeline_config(
        project_root / "configs" / "demo.yaml", ["wia.split=test", steps, *overrides], run=run
    )


def test_changed_k_redoes_from_the_wia_step_and_config_yaml_follows(project_root, tmp_path):
    """The issue's reproduction: re-running a finished pipeline with --set k=... skipped every step."""
    import yaml

    run, fake = tmp_path / "run", FakeRunner()
    run_pipeline(_demo_config(project_root, run), run, action=fake)
    assert fake.commands() == ALL
    assert yaml.safe_load((run / "config.yaml").read_text())["k"] == 5
    fake.calls.clear()
    record = run_pipeline(_demo_config(project_root, run, "weak.trainer.progress=true"), run, action=fake)
    assert fake.commands() == []  # a progress bar is not a change of what is made
    fake.calls.clear()
    record = run_pipeline(_demo_config(project_root, run, "k=3"), run, action=fake)
    assert fake.commands() == ["wia", "train-msl", "test", "report"]
    assert record["steps"]["cam"]["status"] == "skipped" and record["steps"]["wia"]["status"] == "done"
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["k"] == 3 and resolved["wia"]["select"] == 3 and resolved["msl"]["strong"]["k"] == 3


def test_changed_config_clears_later_outputs_before_running(project_root, tmp_path):
    run, fake = tmp_path / "run", FakeRunner()
    run_pipeline(_demo_config(project_root, run), run, action=fake)
    marker = run / "test" / "old.txt"
    marker.write_text("made with the old config")

    def fail_at_msl(command, config, layout, resume):
        if command == "train-msl":
            assert not marker.exists()  # later outputs are gone before the first redone step finishes
            raise InputError("stop here")
        fake(command, config, layout, resume)

    with pytest.raises(WimlError, match="'train-msl' failed"):
        run_pipeline(_demo_config(project_root, run, "msl.trainer.epochs=3"), run, action=fail_at_msl)
    assert not (run / "test").exists() and not (run / "msl").exists()


def test_missing_fingerprint_redoes_and_changed_config_is_not_resumed(project_root, tmp_path):
    run, fake = tmp_path / "run", FakeRunner()
    cfg = _demo_config(project_root, run)
    run_pipeline(cfg, run, action=fake)
    state = json.loads((run / "pipeline.json").read_text())
    del state["steps"]["report"]["fingerprint"]  # e.g. a run folder made by an older WIML
    (run / "pipeline.json").write_text(json.dumps(state))
    fake.calls.clear()
    run_pipeline(cfg, run, action=fake)
    assert fake.commands() == ["report"]

    from wiml.networks.checkpoint import save_training_state

    interrupted = FakeRunner(epochs=1)
    cfg2 = _demo_config(project_root, run, "weak.trainer.epochs=11")
    with pytest.raises(WimlError, match="interrupted"):
        run_pipeline(cfg2, run, action=interrupted)
    save_training_state(run / "weak" / "state.pt", {"epoch": 1, "model": {}})
    fake.calls.clear()
    run_pipeline(cfg2, run, action=fake)  # same config: the interrupted training is resumed
    assert fake.calls[0] == ("train-weak", True)
    with pytest.raises(WimlError, match="interrupted"):
        run_pipeline(_demo_config(project_root, run, "weak.trainer.epochs=12"), run, action=interrupted)
    save_training_state(run / "weak" / "state.pt", {"epoch": 1, "model": {}})
    fake.calls.clear()
    run_pipeline(_demo_config(project_root, run, "weak.trainer.epochs=13"), run, action=fake)
    assert fake.calls[0] == ("train-weak", False)  # another config: trained anew, not resumed
