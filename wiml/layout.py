"""Where things are: the project's own folders and every path of a run folder.

A run folder (``wiml pipeline --out RUN``; each step can also be run alone)::

    RUN/
      config.yaml         resolved pipeline config        pipeline.json   step states, wall times, fingerprints
      run.lock            PID of the process using RUN     raw/            make-demo output (demo only)
      data/               wiml prepare                     weak/           wiml train-weak (TrainingLayout)
      cam/                wiml cam                         wia/            wiml wia-sim; strong labels in wia/result/
      msl/                wiml train-msl (TrainingLayout)  test/           wiml test
      baselines/          wiml baselines                   ablations/      ablations of wiml baselines
      report/             wiml report (report.md)

:class:`RunLayout` and :class:`TrainingLayout` are the only places that spell these names; every other module
asks them. ``RunLayout(run).weak.best`` is the weak model's ``RUN/weak/best.safetensors``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

#: the project checkout (holds ``configs/``, ``data_source/``, ``test_data/``, ``runs/``)
PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: sample slices the annotator opens by default (the original release's ``data_source/``)
SAMPLE_IMAGES = PROJECT_ROOT / "data_source"

#: sample PNG slices with labels (``data/``, ``label/``) the original test script segments by default
SAMPLE_TEST_DATA = PROJECT_ROOT / "test_data"

#: the project's YAML configs
CONFIGS = PROJECT_ROOT / "configs"

#: the summary every step folder that reports numbers writes (cam, wia, test, baselines, ablations)
SUMMARY_JSON = "summary.json"

#: the WIA result folder inside a wia-sim output folder (``strong_label/``, ``recording/``)
WIA_RESULT = "result"

#: the resolved configuration a step writes beside its outputs
CONFIG_YAML = "config.yaml"


@dataclasses.dataclass(frozen=True)
class TrainingLayout:
    """The files of a training folder (``RUN/weak``, ``RUN/msl``, a baseline's ``train/``).

    Attributes:
        root: the folder.
    """

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def best(self) -> Path:
        """The checkpoint of the best validation epoch (its JSON sidecar: :attr:`best_sidecar`)."""
        return self.root / "best.safetensors"

    @property
    def best_sidecar(self) -> Path:
        return self.root / "best.json"

    @property
    def last(self) -> Path:
        """The checkpoint of the last finished epoch."""
        return self.root / "last.safetensors"

    @property
    def last_sidecar(self) -> Path:
        return self.root / "last.json"

    @property
    def state(self) -> Path:
        """Model + optimiser + scheduler + RNG state for ``--resume``."""
        return self.root / "state.pt"

    @property
    def log(self) -> Path:
        """Per-epoch metrics, CSV."""
        return self.root / "log.csv"

    @property
    def curves(self) -> Path:
        """Training curves, PNG."""
        return self.root / "curves.png"

    @property
    def config(self) -> Path:
        """The resolved training config."""
        return self.root / CONFIG_YAML

    @property
    def strong_labels(self) -> Path:
        """Which strong labels an MSL run used (``n_strong``, ``source``, names)."""
        return self.root / "strong_labels.json"

    def previous_best(self, version: int) -> Path:
        """``best.v<version>.safetensors``: an earlier best kept by ``--overwrite`` (sidecar ``best.v<version>.json``)."""
        if version < 1:
            raise ValueError(f"version must be >= 1, got {version}")
        return self.root / f"best.v{version}.safetensors"


@dataclasses.dataclass(frozen=True)
class RunLayout:
    """Every path of a run folder.

    Attributes:
        root: the run folder.
    """

    root: Path

    #: step name -> folder name, in pipeline order
    STEP_FOLDERS = {
        "make-demo": "raw",
        "prepare": "data",
        "train-weak": "weak",
        "cam": "cam",
        "wia": "wia",
        "train-msl": "msl",
        "test": "test",
        "baselines": "baselines",
        "report": "report",
    }

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def of_prepared(cls, data: str | Path) -> RunLayout:
        """The run whose prepared folder is ``data`` (``RUN/data`` -> ``RUN``)."""
        return cls(Path(data).resolve().parent)

    @property
    def config(self) -> Path:
        """The resolved pipeline config."""
        return self.root / CONFIG_YAML

    @property
    def pipeline_state(self) -> Path:
        """``pipeline.json``: step states, wall times and fingerprints."""
        return self.root / "pipeline.json"

    @property
    def lock(self) -> Path:
        """``run.lock``: the PID of the process working in the run folder."""
        return self.root / "run.lock"

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def data(self) -> Path:
        """The prepared slices (``manifest.csv``, ``slices/``, ``patients.json``, ``prepare.json``)."""
        return self.root / "data"

    @property
    def prepare_record(self) -> Path:
        """``data/prepare.json``: what ``wiml prepare`` did."""
        return self.data / "prepare.json"

    @property
    def weak(self) -> TrainingLayout:
        """The weak model's training folder."""
        return TrainingLayout(self.root / "weak")

    @property
    def cam(self) -> Path:
        return self.root / "cam"

    @property
    def wia(self) -> Path:
        return self.root / "wia"

    @property
    def wia_result(self) -> Path:
        """The WIA result folder of the robot user (``strong_label/``, ``recording/``)."""
        return self.wia / WIA_RESULT

    @property
    def msl(self) -> TrainingLayout:
        """The MSL model's training folder."""
        return TrainingLayout(self.root / "msl")

    @property
    def test(self) -> Path:
        return self.root / "test"

    @property
    def baselines(self) -> Path:
        return self.root / "baselines"

    @property
    def ablations(self) -> Path:
        return self.root / "ablations"

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def report_md(self) -> Path:
        return self.report / "report.md"

    @property
    def sample_test(self) -> Path:
        """``wiml test`` on the project's sample slices (:data:`SAMPLE_TEST_DATA`), the test script's default."""
        return self.root / "test_data_eval"

    def step_dir(self, step: str) -> Path:
        """The folder pipeline step ``step`` writes.

        Raises:
            KeyError: an unknown step name.
        """
        return self.root / self.STEP_FOLDERS[step]


def summary_json(folder: str | Path) -> Path:
    """``<folder>/summary.json``: the summary a step folder that reports numbers writes (cam, wia, test, ...)."""
    return Path(folder) / SUMMARY_JSON


#: the demo run the README's ``make demo`` writes; the original entry points default to it
DEMO_RUN = RunLayout(PROJECT_ROOT / "runs" / "demo")
