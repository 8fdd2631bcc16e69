"""The end-to-end WIML pipeline over one run folder, resumable step by step.

``make-demo`` (only when no raw data is configured) -> ``prepare`` -> ``train-weak`` -> ``cam`` ->
``wia`` (robot WIA on K slices) -> ``train-msl`` -> ``test`` -> [``baselines``] -> ``report``.

One YAML holds the whole run (:class:`PipelineConfig`): top-level ``name``, ``raw``, ``k``, ``seed``,
``device``, ``steps``, and one typed section per step, the same configuration each subcommand takes
(``make_demo``, ``prepare``, ``weak``, ``cam``, ``wia``, ``msl``, ``test``, ``baselines``). ``defaults`` names,
per section, a YAML file the section starts from (e.g. ``weak: weak_default.yaml``, relative to the pipeline
YAML). ``k``, ``seed``, ``device`` and ``raw`` are set once at the top; the fields that follow from them
(``wia.select``, ``msl.strong.k``, the trainers' seeds and devices, ``prepare.input``, ...) are filled in by
:func:`load_pipeline_config` and may not contradict them. The whole config is checked before the first step.

Each step calls the library (no command lines). A step is skipped when its outputs exist and pass its check
(readable manifest and slices, checkpoints whose weights match their sidecar's size and SHA-256, JSON
summaries that parse, ...); a step whose outputs are missing or corrupt is run again, and so is every step
after it. An interrupted training step resumes from its ``state.pt``. Timings and states go to
``RUN/pipeline.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from wiml.config import (
    build_with_overrides,
    check_ranges,
    from_dict,
    merge_mappings,
    read_yaml_mapping,
    save_config,
    to_dict,
)
from wiml.data.demo import DemoDataConfig
from wiml.data.prepare import PrepareConfig
from wiml.errors import ConfigError, InputError, WimlError
from wiml.evaluation.evaluate import TestConfig
from wiml.experiments.baselines import BaselinesConfig
from wiml.experiments.cam_quality import CamConfig
from wiml.experiments.wia_sim import WiaSimConfig
from wiml.layout import PROJECT_ROOT, WIA_RESULT, RunLayout, TrainingLayout, summary_json
from wiml.training.config import WeakConfig
from wiml.training.msl import MSLConfig
from wiml.utils import atomic_write_text

logger = logging.getLogger(__name__)

#: every pipeline step, in order
STEP_NAMES = ("make-demo", "prepare", "train-weak", "cam", "wia", "train-msl", "test", "baselines", "report")

#: the config sections (``defaults`` may name a base YAML for each)
SECTIONS = ("make_demo", "prepare", "weak", "cam", "wia", "msl", "test", "baselines")

#: fields filled in from the top-level settings (``section.field`` -> top-level key or the run folder)
DERIVED = {
    "prepare.input": "raw",
    "weak.trainer.seed": "seed",
    "weak.trainer.device": "device",
    "wia.select": "k",
    "wia.device": "device",
    "msl.strong.k": "k",
    "msl.strong.source": "the run (wia: the robot's labels)",
    "msl.strong.wia_dir": "the run folder",
    "msl.trainer.seed": "seed",
    "msl.trainer.device": "device",
    "msl.init_checkpoint": "the run folder",
    "test.device": "device",
}


@dataclasses.dataclass
class PipelineConfig:
    """What ``wiml pipeline`` runs (``configs/demo.yaml``, ``configs/brats2015.yaml``).

    Attributes:
        name: run name shown in the report.
        raw: raw data folder (``{project}`` = the checkout; a relative path is relative to the pipeline YAML's
            folder); empty = make the synthetic demo set in ``RUN/raw``.
        k: number of strong labels: the robot WIA labels K slices and MSL trains on them.
        seed: seed of the training steps (weak, MSL, the baselines when ``baselines.seeds`` is empty).
        device: ``auto`` | ``cpu`` | ``cuda`` for every step.
        steps: steps to run, in order (``baselines`` is optional and not in the default list).
        defaults: section -> YAML file the section starts from (relative to the pipeline YAML or with
            ``{project}``); the section's own keys are applied on top.
        make_demo, prepare, weak, cam, wia, msl, test, baselines: the steps' typed configurations.
    """

    RANGES: ClassVar[dict[str, str]] = {"k": ">= 1", "seed": ">= 0"}

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
    defaults: dict[str, str] = dataclasses.field(default_factory=dict)
    make_demo: DemoDataConfig = dataclasses.field(default_factory=DemoDataConfig)
    prepare: PrepareConfig = dataclasses.field(default_factory=PrepareConfig)
    weak: WeakConfig = dataclasses.field(default_factory=WeakConfig)
    cam: CamConfig = dataclasses.field(default_factory=CamConfig)
    wia: WiaSimConfig = dataclasses.field(default_factory=WiaSimConfig)
    msl: MSLConfig = dataclasses.field(default_factory=MSLConfig)
    test: TestConfig = dataclasses.field(default_factory=TestConfig)
    baselines: BaselinesConfig = dataclasses.field(default_factory=BaselinesConfig)


def expand_path(text: str | Path, base: Path | None = None) -> Path:
    """``{project}`` -> the checkout; a relative result is taken relative to ``base`` (a YAML file's folder)."""
    path = Path(str(text).replace("{project}", str(PROJECT_ROOT)))
    return path if path.is_absolute() or base is None else base / path


def _get(data: dict, dotted: str):
    node = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _set(data: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def load_pipeline_config(
    path: str | Path | None, overrides: list[str] | None = None, run: str | Path | None = None
) -> PipelineConfig:
    """Read, merge, derive and check the whole pipeline configuration (before any step runs).

    Order: the dataclass defaults, each section's ``defaults`` YAML, the pipeline YAML, then ``overrides``
    (``section.field=value`` or ``k=3``); then the fields in :data:`DERIVED` are filled in from the top level and
    the run folder ``run`` (paths are left empty without it).

    Args:
        path: the pipeline YAML (None = the defaults).
        overrides: ``--set`` overrides.
        run: the run folder (for the derived paths: ``msl.strong.wia_dir``, ``msl.init_checkpoint``).

    Returns:
        the resolved :class:`PipelineConfig` (``defaults`` emptied: the sections are complete).

    Raises:
        ConfigError: naming the file: not YAML, an unknown key or a wrong value in any section, the old
            ``*_args`` form, a ``defaults`` file that is missing, a derived field that contradicts the top
            level, an unknown step, a missing ``raw`` folder.
    """
    where = Path(path).resolve() if path is not None else None  # a command-line path: the user's cwd
    data: dict = {}
    if where is not None:
        data = read_yaml_mapping(where, "pipeline config")
    old = sorted(k for k in data if isinstance(k, str) and k.endswith("_args"))
    if old:
        raise ConfigError(
            f"{old} is the old command-line form of the pipeline config; write typed sections instead "
            f"({', '.join(SECTIONS)}; see configs/demo.yaml and the README)",
            where,
        )
    return build_with_overrides(lambda mapping: _assemble(mapping, where, run), data, overrides, where)


def _assemble(data: dict, where: Path | None, run: str | Path | None) -> PipelineConfig:
    """The pipeline config from the YAML mapping ``data`` (overrides applied), its folder ``where`` and run."""
    base = where.parent if where is not None else None  # without a YAML: absolute paths only
    merged = to_dict(PipelineConfig())
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"defaults: expected a mapping section -> YAML file, got {defaults!r}")
    for section, file in defaults.items():
        if section not in SECTIONS:
            raise ConfigError(f"defaults: unknown section {section!r}; expected some of {list(SECTIONS)}")
        base_file = expand_path(file, base)
        if not base_file.is_absolute():
            raise ConfigError(f"defaults.{section}: {file!r} must be absolute without a pipeline YAML")
        if not base_file.is_file():
            raise ConfigError(f"defaults.{section}: {base_file} not found")
        try:
            loaded = read_yaml_mapping(base_file)
        except ConfigError as exc:
            raise ConfigError(f"defaults.{section}: {exc}") from exc
        merge_mappings(merged[section], loaded)
    merge_mappings(merged, data)
    merged["defaults"] = {}
    config = from_dict(PipelineConfig, merged)
    if config.raw:
        raw = expand_path(config.raw, base)
        if not raw.is_absolute():
            raise ConfigError(f"raw: {config.raw!r} must be absolute without a pipeline YAML")
        config.raw = str(raw)
    _derive(config, data, run)
    check_ranges(config)  # every section's RANGES, one line listing what is out of range
    _validate(config)
    return config


def _derive(config: PipelineConfig, explicit: dict, run: str | Path | None) -> None:
    """Fill in :data:`DERIVED` from the top level; refuse an explicit value that contradicts it."""
    layout = RunLayout(Path(run).resolve()) if run is not None else None
    raw = expand_path(config.raw) if config.raw else (layout.raw if layout else None)
    values = {
        "prepare.input": str(raw) if raw else None,
        "weak.trainer.seed": config.seed,
        "weak.trainer.device": config.device,
        "wia.select": config.k,
        "wia.device": config.device,
        "msl.strong.k": config.k,
        "msl.strong.source": "wia",
        "msl.strong.wia_dir": str(layout.wia_result) if layout else None,
        "msl.trainer.seed": config.seed,
        "msl.trainer.device": config.device,
        "msl.init_checkpoint": str(layout.weak.best) if layout and config.msl.init == "weak" else None,
        "test.device": config.device,
    }
    tree = to_dict(config)
    for key, value in values.items():
        given = _get(explicit, key)
        if given is None or value is None or str(given) == str(value):
            _set(tree, key, value)
            continue
        source = DERIVED[key]
        if source in ("raw", "seed", "device", "k"):
            raise ConfigError(
                f"{key}={given!r} contradicts {source}={getattr(config, source)!r}: set {source} once, at the top"
            )
        raise ConfigError(f"{key}={given!r}: the pipeline sets it from {source} ({value!r}); leave it out")
    resolved = from_dict(PipelineConfig, tree)
    for field in dataclasses.fields(PipelineConfig):
        setattr(config, field.name, getattr(resolved, field.name))


def _validate(config: PipelineConfig) -> None:
    """Checks across sections and values ``from_dict`` cannot see."""
    unknown = [s for s in config.steps if s not in STEP_NAMES]
    if unknown:
        raise ConfigError(f"steps: unknown step(s) {unknown}; expected some of {list(STEP_NAMES)}")
    if config.k < 1:
        raise ConfigError(f"k must be >= 1, got {config.k}")
    if config.device not in ("auto", "cpu") and not config.device.startswith("cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda[:N], got {config.device!r}")
    if config.raw and "prepare" in config.steps and not expand_path(config.raw).is_dir():
        raise ConfigError(f"raw: data folder {expand_path(config.raw)} not found")
    if not config.raw and "make-demo" in config.steps:
        config.make_demo.validate()
    config.baselines.validate()


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
    labels = sorted((out / WIA_RESULT / "strong_label").glob("*.png"))
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

#: ``action(step name, config, layout, resume)``: runs one step (tests replace it)
StepAction = Callable[[str, PipelineConfig, RunLayout, bool], None]


@dataclasses.dataclass
class Step:
    """One pipeline step.

    Attributes:
        name: step name (one of :data:`STEP_NAMES`).
        out: the folder the step writes.
        check: ``check(out) -> None`` when the outputs are valid, else the reason they are not.
        resumable: training steps continue from ``out/state.pt`` when it is readable.
    """

    name: str
    out: Path
    check: Callable[[Path], str | None]
    resumable: bool = False


def build_steps(config: PipelineConfig, run: str | Path) -> list[Step]:
    """The configured steps, their output folders and checks (``make-demo`` only without ``raw``)."""
    layout = RunLayout(Path(run))
    raw = expand_path(config.raw) if config.raw else layout.raw
    table = {
        "make-demo": Step("make-demo", raw, check_raw),
        "prepare": Step("prepare", layout.data, check_prepared),
        "train-weak": Step("train-weak", layout.weak.root, check_training, resumable=True),
        "cam": Step("cam", layout.cam, check_cam),
        "wia": Step("wia", layout.wia, check_wia),
        "train-msl": Step("train-msl", layout.msl.root, check_training, resumable=True),
        "test": Step("test", layout.test, check_test),
        "baselines": Step("baselines", layout.baselines, check_baselines),
        "report": Step("report", layout.report, check_report),
    }
    unknown = [s for s in config.steps if s not in table]
    if unknown:
        raise ConfigError(f"unknown pipeline step(s) {unknown}; expected some of {list(table)}")
    steps = [table[s] for s in config.steps]
    if config.raw:
        steps = [s for s in steps if s.name != "make-demo"]
    return steps


def run_step(name: str, config: PipelineConfig, layout: RunLayout, resume: bool = False) -> None:
    """Run pipeline step ``name`` by calling the library with the step's section of ``config``.

    Raises:
        WimlError: from the step (bad data, a checkpoint that cannot be loaded, ...).
        KeyError: an unknown step name.
    """
    from wiml.data.check import require_valid_data

    if name == "make-demo":
        from wiml.data.demo import make_demo

        demo = config.make_demo
        make_demo(layout.raw, demo.patients, demo.seed, demo.phantom(), progress=False)
    elif name == "prepare":
        from wiml.data.prepare import prepare

        prepare(config.prepare, layout.data, progress=False)
    elif name == "train-weak":
        from wiml.training.weak import train_weak

        require_valid_data(layout.data)
        train_weak(config.weak, layout.data, layout.weak.root, resume=resume)
    elif name == "cam":
        from wiml.experiments.cam_quality import run_cam

        run_cam(layout.weak.best, layout.data, layout.cam, config.cam, config.device)
    elif name == "wia":
        from wiml.experiments.wia_sim import checkpoint_cam_source, run_wia_simulation

        source = checkpoint_cam_source(layout.weak.best, config.wia.device, config.wia.cam_input_px)
        run_wia_simulation(layout.data, layout.wia, config.wia, source)
    elif name == "train-msl":
        from wiml.training.msl import train_msl

        require_valid_data(layout.data)
        train_msl(config.msl, layout.data, layout.msl.root, resume=resume)
    elif name == "test":
        from wiml.evaluation.evaluate import evaluate_checkpoint

        evaluate_checkpoint(config.test, layout.data, layout.msl.best, layout.test)
    elif name == "baselines":
        from wiml.experiments.baselines import run_baselines

        seeds = list(config.baselines.seeds) or [config.seed]
        run_baselines(
            layout.root,
            layout.baselines,
            list(config.baselines.methods),
            seeds,
            config.msl,
            [],
            k=config.k,
            device=config.device,
        )
    elif name == "report":
        from wiml.evaluation.report import write_report

        write_report(layout.root)
    else:
        raise KeyError(f"unknown pipeline step {name!r}")


def _state_readable(path: Path) -> bool:
    from wiml.networks.checkpoint import load_training_state

    try:
        load_training_state(path)
    except WimlError:
        return False
    return True


def check_k_available(config: PipelineConfig, layout: RunLayout) -> None:
    """Refuse a K larger than the slices the robot user can label (:func:`wia_slices`), as soon as the prepared
    data exist and before any training step runs.

    Raises:
        ConfigError: ``k`` is more than the slices of ``wia.split`` with a target (one line, with the count).
        InputError: the split holds no slice with a target.
    """
    from wiml.experiments.wia_sim import wia_slices

    if "wia" not in config.steps or not (layout.data / "manifest.csv").is_file():
        return
    try:
        wia_slices(layout.data, config.wia)
    except ConfigError as exc:
        raise ConfigError(f"k = {config.k} is more than the prepared data allow: {exc}") from exc


#: what each step's fingerprint covers besides the previous step's fingerprint (config sections / top-level keys)
STEP_CONFIG = {
    "make-demo": ("make_demo",),
    "prepare": ("prepare",),
    "train-weak": ("weak",),
    "cam": ("cam", "device"),
    "wia": ("wia",),
    "train-msl": ("msl",),
    "test": ("test",),
    "baselines": ("baselines", "msl", "k", "seed", "device"),
    "report": ("name",),
}

#: fields that change how a step shows progress, not what it makes (left out of fingerprints)
COSMETIC_KEYS = ("progress",)


def _canonical(value, run: str):
    if isinstance(value, dict):
        return {k: _canonical(v, run) for k, v in value.items() if k not in COSMETIC_KEYS}
    if isinstance(value, list):
        return [_canonical(v, run) for v in value]
    if isinstance(value, str) and run:
        return value.replace(run, "{run}")
    return value


def step_fingerprints(config: PipelineConfig, steps: list[Step], run: str | Path) -> dict[str, str]:
    """SHA-256 per step of its resolved configuration and its inputs.

    A step's inputs are the outputs of the steps before it, so its fingerprint covers the previous step's
    fingerprint: a change anywhere upstream changes every fingerprint after it. Paths inside the run folder
    are written relative to it (a moved run folder keeps its fingerprints); progress settings are left out.

    Returns:
        ``{step name: hex digest}`` for ``steps``, in order.
    """
    tree = to_dict(config)
    root = str(Path(run).resolve())
    out, previous = {}, ""
    for step in steps:
        part = {key: _canonical(tree[key], root) for key in STEP_CONFIG[step.name]}
        payload = json.dumps(
            {"step": step.name, "config": part, "after": previous}, sort_keys=True, default=str
        )
        previous = out[step.name] = hashlib.sha256(payload.encode("utf-8")).hexdigest()
    return out


def run_pipeline(
    config: PipelineConfig,
    run: str | Path,
    force: list[str] | None = None,
    action: StepAction = run_step,
) -> dict:
    """Run (or resume) the pipeline in ``run``, holding the folder's lock (:class:`wiml.runlock.RunLock`).

    A step runs when its outputs are missing or invalid, when it is forced, when its fingerprint
    (:func:`step_fingerprints`) differs from the one recorded when its outputs were made (or none is
    recorded), and when an earlier step runs. The outputs of every step that will run are removed first
    (an interrupted training step with an unchanged fingerprint is resumed instead), then ``RUN/config.yaml``
    is written: it always describes what the outputs in the folder were made with.

    Args:
        config: resolved :class:`PipelineConfig` (:func:`load_pipeline_config`).
        run: the run folder.
        force: step names to redo even when their outputs are valid (``["all"]`` = every step).
        action: runs one step (:func:`run_step`; tests replace it).

    Returns:
        ``{"name", "steps": {name: {"status": "done"|"skipped", "seconds", "reason", "fingerprint"}},
        "total_s"}``, also written to ``RUN/pipeline.json`` as each step starts and ends.

    Raises:
        RunLockedError: another live process works in the folder.
        WimlError: a step fails, or its outputs are still invalid after it ran.
        ConfigError: ``k`` is more than the slices available (checked once the prepared data exist, before
            the first training step; :func:`check_k_available`).
    """
    from wiml.runlock import RunLock

    run = Path(run).resolve()
    with RunLock(run, "wiml pipeline"):
        return _run_locked(config, RunLayout(run), set(force or []), action)


def _run_locked(config: PipelineConfig, layout: RunLayout, force: set[str], action: StepAction) -> dict:
    state_path = layout.pipeline_state
    previous: dict = {}
    if state_path.is_file():
        try:
            previous = json.loads(state_path.read_text(encoding="utf-8")).get("steps", {}) or {}
        except (json.JSONDecodeError, OSError, AttributeError):
            previous = {}
    steps = build_steps(config, layout.root)
    fingerprints = step_fingerprints(config, steps, layout.root)
    plan: list[tuple[Step, str | None, bool]] = []
    redo_rest = False
    for step in steps:
        recorded = (previous.get(step.name) or {}).get("fingerprint")
        changed = recorded != fingerprints[step.name]
        reason = step.check(step.out) if step.out.exists() else "outputs missing"
        if "all" in force or step.name in force:
            reason = reason or "forced"
        elif redo_rest and reason is None:
            reason = "an earlier step is redone"
        elif reason is None and recorded is None:
            reason = "no fingerprint recorded for its outputs"
        elif reason is None and changed:
            reason = "its configuration or inputs changed"
        resume = False
        if reason is not None:
            state = TrainingLayout(step.out).state
            resume = (
                step.resumable
                and not redo_rest
                and not changed
                and reason not in ("forced",)
                and state.is_file()
                and _state_readable(state)
            )
            redo_rest = True
        plan.append((step, reason, resume))

    record: dict = {"name": config.name, "steps": {}, "total_s": 0.0}
    for step, reason, resume in plan:  # clear what will be made again, before anything runs
        if reason is None:
            prev = previous.get(step.name) or {}
            record["steps"][step.name] = {
                "status": "skipped",
                "seconds": prev.get("seconds"),
                "reason": "valid outputs made with the same configuration",
                "fingerprint": fingerprints[step.name],
            }
        elif not resume and step.out.exists():
            logger.warning("pipeline: %s: %s; clearing %s", step.name, reason, step.out)
            shutil.rmtree(step.out)
    layout.root.mkdir(parents=True, exist_ok=True)
    save_config(config, layout.config)
    atomic_write_text(state_path, json.dumps(record, indent=2))

    t_all = time.perf_counter()
    k_checked = False
    for step, reason, resume in plan:
        if not k_checked and step.name not in ("make-demo", "prepare"):
            check_k_available(config, layout)  # the prepared data exist now; nothing trained yet
            k_checked = True
        if reason is None:
            logger.info("pipeline: %s skipped (valid outputs in %s)", step.name, step.out)
            continue
        logger.info("pipeline: running %s (%s)%s", step.name, reason, " [resume]" if resume else "")
        record["steps"][step.name] = {
            "status": "running",
            "seconds": None,
            "reason": reason,
            "fingerprint": fingerprints[step.name],
        }
        atomic_write_text(state_path, json.dumps(record, indent=2))
        t0 = time.perf_counter()
        try:
            action(step.name, config, layout, resume)
        except WimlError as exc:
            raise WimlError(
                f"pipeline step {step.name!r} failed: {exc}; fix it and re-run the same command to resume"
            ) from exc
        seconds = time.perf_counter() - t0
        bad = step.check(step.out)
        if bad:
            raise WimlError(f"pipeline step {step.name!r} finished but its outputs are invalid: {bad}")
        record["steps"][step.name].update(status="done", seconds=seconds)
        record["total_s"] = time.perf_counter() - t_all
        atomic_write_text(state_path, json.dumps(record, indent=2))
    record["total_s"] = time.perf_counter() - t_all
    atomic_write_text(state_path, json.dumps(record, indent=2))
    return record
