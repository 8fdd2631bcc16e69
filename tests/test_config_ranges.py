"""Range checks of every numeric setting at config load (``RANGES`` of each config class): one line each,
exit status 2, nothing written."""

from __future__ import annotations

import dataclasses
import re

import pytest

from tests.conftest import PROJECT_ROOT as PROJECT
from tests.training.synthetic import make_prepared
from wiml.cli import main as wiml_main
from wiml.config import _in_range, check_ranges, load_config, range_problems
from wiml.data.crops import CropConfig
from wiml.data.demo import DemoDataConfig
from wiml.data.prepare import PrepareConfig
from wiml.data.split import SplitConfig
from wiml.data.transforms import AugmentConfig
from wiml.errors import ConfigError
from wiml.evaluation.evaluate import TestConfig as EvalConfig
from wiml.experiments.bootstrap import BootstrapConfig
from wiml.experiments.cam_quality import CamConfig
from wiml.experiments.wia_session import CamPlusConfig, WiaSessionConfig
from wiml.experiments.wia_sim import WiaSimConfig, run_wia_simulation
from wiml.interactive.proposals import ProposalConfig
from wiml.interactive.session import RefinementConfig
from wiml.training.config import OptimConfig, TrainerConfig, WeakConfig
from wiml.training.mixed import MixedLossConfig
from wiml.training.msl import MSLConfig, StrongConfig

CLASSES = [OptimConfig, TrainerConfig, EvalConfig, CamConfig, WiaSimConfig, AugmentConfig, MixedLossConfig,
           MSLConfig, StrongConfig, DemoDataConfig, PrepareConfig, CropConfig, SplitConfig, RefinementConfig,
           ProposalConfig, WiaSessionConfig, CamPlusConfig, BootstrapConfig]  # fmt: skip


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_ranges_name_real_fields_and_defaults_pass(cls):
    names = {f.name for f in dataclasses.fields(cls)}
    assert set(cls.RANGES) <= names, set(cls.RANGES) - names
    for spec in cls.RANGES.values():
        _in_range(1.0, spec)  # parses
    assert range_problems(cls()) == []


@pytest.mark.parametrize(
    ("value", "spec", "ok"),
    [(0, "> 0", False), (1e-9, "> 0", True), (0, ">= 0", True), (-1, ">= 0", False), (1, ">= 1", True),
     (0.0, "(0, 1)", False), (1.0, "(0, 1)", False), (0.5, "(0, 1)", True), (1.0, "(0, 1]", True),
     (0.0, "[0, 1)", True), (1.0, "[0, 1)", False), (2, "<= 1", False), (0.99, "< 1", True)],
)  # fmt: skip
def test_range_spec(value, spec, ok):
    assert _in_range(value, spec) is ok


def test_every_violation_listed_in_one_line():
    with pytest.raises(ConfigError) as info:
        load_config(
            WeakConfig,
            None,
            ["trainer.epochs=0", "optim.lr=-1", "trainer.batch_size=0", "augment.flip_prob=2"],
        )
    msg = str(info.value)
    assert "\n" not in msg
    for part in ("trainer.epochs = 0: expected >= 1", "optim.lr = -1.0: expected > 0",
                 "trainer.batch_size = 0: expected >= 1", "augment.flip_prob = 2.0: expected [0, 1]"):  # fmt: skip
        assert part in msg


def test_nan_and_list_items_are_checked():
    assert range_problems(OptimConfig(lr=float("nan"))) == ["lr = nan: expected > 0"]
    assert range_problems(CamConfig(taus=[0.2, 1.5])) == ["taus = [0.2, 1.5]: expected (0, 1) for every item"]
    assert range_problems(StrongConfig(k=None)) == []  # None: not set, not checked
    with pytest.raises(ConfigError, match="k = 0: expected >= 1"):
        check_ranges(StrongConfig(k=0))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return make_prepared(tmp_path_factory.mktemp("ranges") / "data")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [(["--epochs", "-1"], "trainer.epochs = -1: expected >= 1"),
     (["--epochs", "0"], "trainer.epochs = 0: expected >= 1"),
     (["--set", "optim.lr=-1"], "optim.lr = -1.0: expected > 0"),
     (["--set", "trainer.batch_size=0"], "trainer.batch_size = 0: expected >= 1")],
)  # fmt: skip
@pytest.mark.parametrize("step", ["train-weak", "train-msl"])
def test_training_refuses_out_of_range_before_writing(prepared, tmp_path, capsys, step, extra, expected):
    out = tmp_path / "out"
    assert wiml_main.main([step, "--data", str(prepared), "--out", str(out), "--device", "cpu", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"wiml {step}: error: {expected}"] or (len(err) == 1 and expected in err[0])
    assert not out.exists()


def test_wiml_test_refuses_threshold_2(prepared, tmp_path, capsys):
    out = tmp_path / "t"
    argv = ["test", "--data", str(prepared), "--checkpoint", str(tmp_path / "none.safetensors"), "--out", str(out),
            "--set", "threshold=2"]  # fmt: skip
    assert wiml_main.main(argv) == 2
    assert (
        capsys.readouterr().err.strip()
        == "wiml test: error: --set threshold=2: threshold = 2.0: expected (0, 1)"
    )
    assert not out.exists()


def test_wia_sim_select_more_than_available(prepared, tmp_path):
    out = tmp_path / "wia"
    # make_prepared: the train patient p0 has 4 slices with a target
    with pytest.raises(ConfigError, match=r"select = 1000: only 4 slice\(s\) of split 'train' have a target"):
        run_wia_simulation(prepared, out, WiaSimConfig(split="train", select=1000))
    with pytest.raises(ConfigError, match="select = -1: expected >= 0"):  # 0 = no strong labels written
        run_wia_simulation(prepared, out, WiaSimConfig(split="train", select=-1))
    assert not out.exists()


def test_pipeline_refuses_a_bad_setting_in_any_section_before_the_first_step(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["pipeline", "--config", str(PROJECT / "configs" / "demo.yaml"), "--out", str(out),
            "--set", "prepare.size=4", "--set", "msl.trainer.epochs=0", "--set", "k=-1"]  # fmt: skip
    assert wiml_main.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    for part in ("prepare.size = 4: expected >= 8", "msl.trainer.epochs = 0: expected >= 1", "k"):
        assert part in err[0]
    assert not (out / "raw").exists()  # nothing was made


def test_a_mistake_is_blamed_on_the_file_or_on_the_set_that_made_it(tmp_path):
    from wiml.training.msl import MSLConfig

    good = tmp_path / "good.yaml"
    good.write_text("optim:\n  lr: 0.01\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  lr: -1\n")
    with pytest.raises(ConfigError, match=r"^--set optim\.lr=abc: config\.optim\.lr: expected float"):
        load_config(MSLConfig, good, ["trainer.epochs=2", "optim.lr=abc"])
    with pytest.raises(ConfigError, match=r"^--set optim\.lx=1: config\.optim: unknown key"):
        load_config(MSLConfig, good, ["trainer.epochs=2", "optim.lx=1"])
    with pytest.raises(ConfigError, match=r"^--set trainer\.epochs=0: trainer\.epochs = 0"):
        load_config(MSLConfig, good, ["trainer.epochs=0"])
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(bad))}: optim\.lr = -1\.0"):
        load_config(MSLConfig, bad, ["optim.lr=-2"])  # the file's own mistake names the file
    assert load_config(MSLConfig, bad, ["optim.lr=0.5"]).optim.lr == 0.5  # an override may mend the file


def test_a_pipeline_set_mistake_names_the_set(project_root):
    from wiml.experiments.pipeline import load_pipeline_config

    with pytest.raises(ConfigError, match=r"^--set weak\.trainer\.epochs=0: weak\.trainer\.epochs = 0"):
        load_pipeline_config(project_root / "configs" / "demo.yaml", ["weak.trainer.epochs=0"])
