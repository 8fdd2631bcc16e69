"""The end-to-end WIML pipeline over one run folder, resumable step by step.

``make-demo`` (only when no raw data is configured) -> ``prepare`` -> ``train-weak`` -> ``cam`` ->
``wia-sim`` (robot WIA on K slices) -> ``train-msl`` -> ``test`` -> [``baselines``] -> ``report``.

Each step is a ``wiml`` subcommand run in-process with arguments built from :class:`PipelineConfig`. A step is
skipped when its outputs exist and pass its check (readable manifest and slices, checkpoints whose weights
match their sidecar's size and SHA-256, JSON summaries that parse, ...); a step whose outputs are missing or
corrupt is run again, and so is every step after it. An interrupted training step resumes from its
``state.pt``. Timings and states go to ``RUN/pipeline.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from wiml.errors import InputError, WimlError
from wiml.layout import PROJECT_ROOT, RunLayout, TrainingLayout, summary_json
from wiml.utils import atomic_write_text

logger = logging.getLogger(__name__)


#: step name -> wiml subcommand
STEP_COMMANDS = {
    "make-demo": "make-demo",
    "prepare": "prepare",
    "train-weak": "train-weak",
    "cam": "cam",
    "wia": "wia-sim",
    "train-msl": "train-msl",
    "test": "test",
    "baselines": "baselines",
    "report": "report",
}


@dataclasses.dataclass
class PipelineConfig:
    """What ``wiml pipeline`` runs (``configs/demo.yaml``, ``configs/brats2015.yaml``).

    Each ``*_args`` list holds extra command-line arguments of that step's subcommand; ``{project}`` and
    ``{run}`` in them are replaced by the project root and the run folder.

    Attributes:
        name: run name shown in the report.
        raw: raw data folder; empty = make the synthetic demo set in ``RUN/raw``.
        k: number of strong labels (robot WIA on K slices).
        seed: seed passed to the training steps.
        device: ``auto`` | ``cpu`` | ``cuda``.
        steps: steps to run, in order (``baselines`` is optional and not in the default list).
        make_demo_args, prepare_args, train_weak_args, cam_args, wia_args, train_msl_args, test_args,
        baselines_args: extra arguments per step.
    """

    name: str = "demo"
    raw: str = ""
    k: int = 5
    seed: int = 0
    device: str = "auto"
    steps: list[str] = dataclasses.field(
        default_factory=lambda: [
            "make-demo",
            "prepare",
            "train-weak",
            "cam",
            "wia",
            "train-msl",
            "test",
            "report",
        ]
    )
    make_demo_args: list[str] = dataclasses.field(default_factory=list)
    prepare_args: list[str] = dataclasses.field(default_factory=list)
    train_weak_args: list[str] = dataclasses.field(default_factory=list)
    cam_args: list[str] = dataclasses.field(default_factory=list)
    wia_args: list[str] = dataclasses.field(default_factory=list)
    train_msl_args: list[str] = dataclasses.field(default_factory=list)
    test_args: list[str] = dataclasses.field(default_factory=list)
    baselines_args: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Step:
    """One pipeline step.

    Attributes:
        name: step name (a key of :data:`STEP_COMMANDS`).
        out: the folder the step writes.
        argv: arguments of the subcommand.
        check: ``check(out) -> None`` when the outputs are valid, else the reason they are not.
        resumable: training steps continue from ``out/state.pt`` when it is readable.
    """

    name: str
    out: Path
    argv: list[str]
    check: Callable[[Path], str | None]
    resumable: bool = False


# -- output checks -------------------------------------------------------------------------------------------


def _json_file(path: Path) -> str | None:
    if not path.is_file():
        return f"{path.name} missing"
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"{path.name} is not valid JSON ({exc.__class__.__name__})"
    return None


def check_raw(out: Path) -> str | None:
    """make-demo output: ``volume-N.nii`` with ``segmentation-N.nii`` that SimpleITK can read."""
    import SimpleITK as sitk

    volumes = sorted(out.glob("volume-*.nii*"))
    if not volumes:
        return "no volume-*.nii"
    for vol in volumes:
        seg = out / vol.name.replace("volume-", "segmentation-")
        for path in (vol, seg):
            if not path.is_file():
                return f"{path.name} missing"
            try:
                sitk.ReadImage(str(path))  # reads the voxels too: a truncated file fails here
            except RuntimeError:
                return f"{path.name} is not readable"
    return None


def check_prepared(out: Path) -> str | None:
    """prepare output: passes :func:`wiml.data.check.check_data` (manifest, every NPZ opens, tags, split)."""
    from wiml.data.check import check_data

    try:
        report = check_data(out)
    except InputError as exc:
        return str(exc)
    return None if report.ok else report.message()


def check_checkpoint(path: Path) -> str | None:
    """A checkpoint whose weights match its sidecar (size and SHA-256)."""
    from wiml.networks.checkpoint import read_sidecar

    if not path.is_file():
        return f"{path.name} missing"
    try:
        meta = read_sidecar(path)
    except WimlError as exc:
        return str(exc)
    if meta.get("weights_bytes") is not None and path.stat().st_size != meta["weights_bytes"]:
        return f"{path.name} has the wrong size (truncated)"
    if meta.get("weights_sha256"):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != meta["weights_sha256"]:
            return f"{path.name} does not match its SHA-256"
    return None


def check_training(out: Path) -> str | None:
    """Training output: valid ``best`` and ``last`` checkpoints, and ``last`` from the final epoch."""
    files = TrainingLayout(out)
    bad = check_checkpoint(files.best) or check_checkpoint(files.last)
    if bad:
        return bad
    meta = json.loads(files.last_sidecar.read_text(encoding="utf-8"))
    planned = ((meta.get("run_config") or {}).get("trainer") or {}).get("epochs")
    if planned is not None and int(meta.get("epoch") or 0) < int(planned):
        return f"training stopped after epoch {meta.get('epoch')} of {planned} (interrupted)"
    return None


def check_cam(out: Path) -> str | None:
    return _json_file(summary_json(out))


def check_wia(out: Path) -> str | None:
    """wia-sim output: ``summary.json`` and readable strong labels."""
    from wiml.data.io import read_slice

    bad = _json_file(summary_json(out))
    if bad:
        return bad
    labels = sorted((out / "result" / "strong_label").glob("*.png"))
    if not labels:
        return "no result/strong_label/*.png"
    for path in labels:
        try:
            read_slice(path)
        except WimlError:
            return f"{path.name} is not readable"
    return None


def check_test(out: Path) -> str | None:
    return _json_file(summary_json(out)) or (
        None if (out / "per_slice.csv").is_file() else "per_slice.csv missing"
    )


def check_baselines(out: Path) -> str | None:
    return _json_file(summary_json(out))


def check_report(out: Path) -> str | None:
    path = out / "report.md"
    return None if path.is_file() and path.stat().st_size > 0 else "report.md missing"


# -- steps -----------------------------------------------------------------------------------------------------


def _expand(args: list[str], run: Path) -> list[str]:
    return [str(a).replace("{project}", str(PROJECT_ROOT)).replace("{run}", str(run)) for a in args]


def build_steps(config: PipelineConfig, run: Path) -> list[Step]:
    """The configured steps with their arguments and output checks."""
    run = Path(run)
    layout = RunLayout(run)
    raw = Path(_expand([config.raw], run)[0]) if config.raw else layout.raw
    data, weak, msl = layout.data, layout.weak.root, layout.msl.root
    dev = ["--device", config.device]
    seed = ["--seed", str(config.seed)]

    def x(args: list[str]) -> list[str]:
        return _expand(args, run)

    table = {
        "make-demo": Step(
            "make-demo", raw, ["--out", str(raw), "--no-progress", *x(config.make_demo_args)], check_raw
        ),
        "prepare": Step(
            "prepare",
            data,
            ["--input", str(raw), "--out", str(data), "--no-progress", *x(config.prepare_args)],
            check_prepared,
        ),
        "train-weak": Step(
            "train-weak",
            weak,
            ["--data", str(data), "--out", str(weak), *dev, *seed, *x(config.train_weak_args)],
            check_training,
            resumable=True,
        ),
        "cam": Step(
            "cam",
            layout.cam,
            [
                "--checkpoint",
                str(layout.weak.best),
                "--data",
                str(data),
                "--out",
                str(layout.cam),
                *dev,
                *x(config.cam_args),
            ],
            check_cam,
        ),
        "wia": Step(
            "wia",
            layout.wia,
            [
                "--checkpoint",
                str(layout.weak.best),
                "--data",
                str(data),
                "--out",
                str(layout.wia),
                "--select",
                str(config.k),
                *x(config.wia_args),
            ],
            check_wia,
        ),
        "train-msl": Step(
            "train-msl",
            msl,
            [
                "--data",
                str(data),
                "--out",
                str(msl),
                "--strong-from",
                "wia",
                "--k",
                str(config.k),
                "--wia-dir",
                str(layout.wia_result),
                "--init",
                "weak",
                "--init-checkpoint",
                str(layout.weak.best),
                *dev,
                *seed,
                *x(config.train_msl_args),
            ],
            check_training,
            resumable=True,
        ),
        "test": Step(
            "test",
            layout.test,
            ["--run", str(run), "--device", config.device, *x(config.test_args)],
            check_test,
        ),
        "baselines": Step(
            "baselines",
            layout.baselines,
            [
                "--run",
                str(run),
                "--k",
                str(config.k),
                *dev,
                "--seeds",
                str(config.seed),
                *x(config.baselines_args),
            ],
            check_baselines,
        ),
        "report": Step("report", layout.report, ["--run", str(run), "--quiet"], check_report),
    }
    unknown = [s for s in config.steps if s not in table]
    if unknown:
        from wiml.errors import ConfigError

        raise ConfigError(f"unknown pipeline step(s) {unknown}; expected some of {list(table)}")
    steps = [table[s] for s in config.steps]
    if config.raw:
        steps = [s for s in steps if s.name != "make-demo"]
    return steps


def run_subcommand(command: str, argv: list[str]) -> int:
    """Run ``wiml <command> argv`` in this process; returns its exit status."""
    from wiml.cli.main import SUBCOMMANDS

    module = importlib.import_module(SUBCOMMANDS[command][0])
    return int(module.main(argv) or 0)


def _state_readable(path: Path) -> bool:
    from wiml.networks.checkpoint import load_training_state

    try:
        load_training_state(path)
    except WimlError:
        return False
    return True


def run_pipeline(
    config: PipelineConfig,
    run: str | Path,
    force: list[str] | None = None,
    runner: Callable[[str, list[str]], int] = run_subcommand,
) -> dict:
    """Run (or resume) the pipeline in ``run``.

    Args:
        config: resolved :class:`PipelineConfig`.
        run: the run folder.
        force: step names to redo even when their outputs are valid (``["all"]`` = every step).
        runner: ``runner(subcommand, argv) -> exit status`` (tests replace it).

    Returns:
        ``{"steps": {name: {"status": "done"|"skipped", "seconds", "reason"}}, "total_s"}``, also written
        to ``RUN/pipeline.json`` after every step.

    Raises:
        WimlError: a step exits non-zero, or its outputs are still invalid after it ran.
    """
    run = Path(run).resolve()
    run.mkdir(parents=True, exist_ok=True)
    force = set(force or [])
    state_path = RunLayout(run).pipeline_state
    previous = {}
    if state_path.is_file():
        try:
            previous = json.loads(state_path.read_text(encoding="utf-8")).get("steps", {})
        except (json.JSONDecodeError, OSError, AttributeError):
            previous = {}
    record: dict = {"name": config.name, "steps": {}, "total_s": 0.0}
    t_all = time.perf_counter()
    redo_rest = False
    for step in build_steps(config, run):
        reason = step.check(step.out) if step.out.exists() else "outputs missing"
        if "all" in force or step.name in force:
            reason = reason or "forced"
        elif redo_rest and reason is None:
            reason = "an earlier step was redone"
        if reason is None:
            prev = previous.get(step.name, {})
            record["steps"][step.name] = {
                "status": "skipped",
                "seconds": prev.get("seconds"),
                "reason": "valid outputs exist",
            }
            logger.info("pipeline: %s skipped (valid outputs in %s)", step.name, step.out)
            continue
        redo_rest = True
        argv = list(step.argv)
        resumable = (
            step.resumable
            and TrainingLayout(step.out).state.is_file()
            and _state_readable(TrainingLayout(step.out).state)
            and reason not in ("forced", "an earlier step was redone")
        )
        if resumable:
            argv.append("--resume")
        elif step.out.exists():
            logger.warning("pipeline: %s: %s; clearing %s and running it again", step.name, reason, step.out)
            shutil.rmtree(step.out)
        logger.info("pipeline: running %s (%s)", step.name, reason)
        t0 = time.perf_counter()
        rc = runner(STEP_COMMANDS[step.name], argv)
        seconds = time.perf_counter() - t0
        if rc != 0:
            raise WimlError(
                f"pipeline step {step.name!r} failed (exit {rc}); fix the error above and re-run "
                "the same command to resume"
            )
        bad = step.check(step.out)
        if bad:
            raise WimlError(f"pipeline step {step.name!r} finished but its outputs are invalid: {bad}")
        record["steps"][step.name] = {"status": "done", "seconds": seconds, "reason": reason}
        record["total_s"] = time.perf_counter() - t_all
        atomic_write_text(state_path, json.dumps(record, indent=2))
    record["total_s"] = time.perf_counter() - t_all
    atomic_write_text(state_path, json.dumps(record, indent=2))
    return record
