"""The pipeline config: one YAML of typed sections, checked as a whole before any step runs."""

from __future__ import annotations

import pytest

from wiml.cli import pipeline as pipeline_cli
from wiml.config import to_dict
from wiml.errors import ConfigError
from wiml.experiments.pipeline import load_pipeline_config
from wiml.layout import RunLayout
from wiml.training.msl import MSLConfig


def _yaml(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_demo_config_resolves_like_the_step_configs(project_root, tmp_path):
    """Sections start from their `defaults` file, then the pipeline's keys, then the derived fields."""
    from wiml.config import load_config
    from wiml.training.config import WeakConfig

    run = tmp_path / "run"
    cfg = load_pipeline_config(project_root / "configs" / "demo.yaml", run=run)
    layout = RunLayout(run.resolve())
    weak = load_config(WeakConfig, project_root / "configs" / "weak_default.yaml")
    assert cfg.weak.optim == weak.optim and cfg.weak.model.depth == weak.model.depth  # from the defaults file
    assert cfg.weak.model.base_width == 8 and cfg.weak.trainer.epochs == 10  # from the pipeline YAML
    assert cfg.prepare.layout == "lits" and cfg.prepare.size == 96 and cfg.prepare.input == layout.raw
    assert (cfg.wia.select, cfg.msl.strong.k) == (5, 5)  # k set once
    assert cfg.msl.strong.source == "wia" and cfg.msl.strong.wia_dir == str(layout.wia_result)
    assert cfg.msl.init_checkpoint == str(layout.weak.best)
    assert cfg.msl.trainer.seed == cfg.weak.trainer.seed == 0 and cfg.defaults == {}


def test_set_overrides_any_section_and_k_reaches_every_consumer(project_root, tmp_path):
    cfg = load_pipeline_config(
        project_root / "configs" / "demo.yaml", ["k=3", "seed=4", "weak.trainer.epochs=2"], run=tmp_path
    )
    assert (cfg.k, cfg.wia.select, cfg.msl.strong.k) == (3, 3, 3)
    assert (cfg.weak.trainer.seed, cfg.msl.trainer.seed) == (4, 4)
    assert cfg.weak.trainer.epochs == 2 and cfg.weak.model.base_width == 8


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("msl.trainer.epochz=3", "config.msl.trainer: unknown key"),
        ("test.threshold=high", "config.test.threshold: expected float"),
        ("wia.refinement.lam=[1]", "config.wia.refinement.lam"),
        ("weak.model.head=nope", "config.weak.model.head"),
        ("steps=[prepare, fly]", "unknown step"),
        ("wia.select=3", "wia.select=3 contradicts k=5"),
        ("msl.strong.source=gt", "the pipeline sets it"),
        ("baselines.methods=[wiml, magic]", "unknown baseline method"),
        ("msl.trainer.epochs=0", "msl.trainer.epochs = 0: expected"),
    ],
)
def test_a_bad_key_or_value_anywhere_fails_before_any_step(project_root, tmp_path, capsys, override, message):
    run = tmp_path / "run"
    argv = ["--config", str(project_root / "configs" / "demo.yaml"), "--out", str(run), "--set", override]
    assert pipeline_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and f"--set {override}" in err and len(err.strip().splitlines()) == 1
    assert not run.exists()  # nothing made, not even the run folder


def test_the_old_argv_form_is_refused_with_directions(tmp_path):
    path = _yaml(tmp_path, "k: 2\ntrain_weak_args: [--set, trainer.epochs=1]\n")
    with pytest.raises(ConfigError, match=r"\['train_weak_args'\] is the old command-line form.*weak"):
        load_pipeline_config(path)


def test_defaults_files_are_relative_to_the_yaml_and_checked(tmp_path):
    (tmp_path / "cfg").mkdir()
    _yaml(tmp_path / "cfg", "trainer: {epochs: 7}\nstrong: {select: random}\n", "m.yaml")
    cfg = load_pipeline_config(
        _yaml(tmp_path / "cfg", "defaults: {msl: m.yaml}\nmsl: {trainer: {batch_size: 3}}\n")
    )
    assert (cfg.msl.trainer.epochs, cfg.msl.trainer.batch_size, cfg.msl.strong.select) == (7, 3, "random")
    with pytest.raises(ConfigError, match="defaults.msl: .*missing.yaml not found"):
        load_pipeline_config(_yaml(tmp_path, "defaults: {msl: missing.yaml}\n"))
    with pytest.raises(ConfigError, match="unknown section 'mls'"):
        load_pipeline_config(_yaml(tmp_path, "defaults: {mls: x.yaml}\n"))
    _yaml(tmp_path / "cfg", "trainer: {epochz: 7}\n", "bad.yaml")
    with pytest.raises(ConfigError, match="msl.trainer: unknown key"):
        load_pipeline_config(_yaml(tmp_path / "cfg", "defaults: {msl: bad.yaml}\n", "q.yaml"))
    _yaml(tmp_path / "cfg", "- 1\n", "list.yaml")
    with pytest.raises(ConfigError, match="defaults.msl: .*list.yaml: expected a YAML mapping"):
        load_pipeline_config(_yaml(tmp_path / "cfg", "defaults: {msl: list.yaml}\n", "r.yaml"))


def test_missing_raw_folder_fails_at_load(tmp_path):
    with pytest.raises(ConfigError, match="raw: data folder .*nowhere not found"):
        load_pipeline_config(_yaml(tmp_path, f"raw: {tmp_path / 'nowhere'}\nsteps: [prepare]\n"))


def test_resolved_config_loads_again_unchanged(project_root, tmp_path):
    """RUN/config.yaml (the resolved config) is itself a valid pipeline config that resolves to the same."""
    from wiml.config import save_config

    first = load_pipeline_config(project_root / "configs" / "demo.yaml", ["k=4"], run=tmp_path / "run")
    save_config(first, tmp_path / "resolved.yaml")
    again = load_pipeline_config(tmp_path / "resolved.yaml", run=tmp_path / "run")
    assert to_dict(again) == to_dict(first)
    assert isinstance(again.msl, MSLConfig)


def test_relative_raw_is_relative_to_the_yaml(tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "data").mkdir()
    cfg = load_pipeline_config(
        _yaml(tmp_path / "cfg", "raw: ../data\nsteps: [prepare]\n"), run=tmp_path / "run"
    )
    assert (
        cfg.raw == str(tmp_path / "cfg" / ".." / "data") and cfg.prepare.input.resolve() == tmp_path / "data"
    )


def test_a_relative_yaml_path_works_from_its_working_directory(project_root, tmp_path, monkeypatch):
    """`make demo` runs `wiml pipeline --config configs/demo.yaml` from the checkout."""
    monkeypatch.chdir(project_root)
    cfg = load_pipeline_config("configs/demo.yaml", run=tmp_path / "run")
    assert cfg.prepare.layout == "lits" and cfg.weak.model.base_width == 8
