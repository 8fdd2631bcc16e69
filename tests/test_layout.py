"""RunLayout / TrainingLayout: every path of a run folder, spelled in one place."""

from __future__ import annotations

from pathlib import Path

import pytest

from wiml.layout import DEMO_RUN, PROJECT_ROOT, SUMMARY_JSON, RunLayout, TrainingLayout, summary_json


def test_run_folder_paths(tmp_path):
    run = RunLayout(tmp_path / "run")
    assert run.config == tmp_path / "run" / "config.yaml"
    assert run.pipeline_state == tmp_path / "run" / "pipeline.json"
    assert run.weak.best == tmp_path / "run" / "weak" / "best.safetensors"
    assert run.weak.best_sidecar == tmp_path / "run" / "weak" / "best.json"
    assert run.msl.state == tmp_path / "run" / "msl" / "state.pt"
    assert run.wia_result == tmp_path / "run" / "wia" / "result"
    assert run.report_md == tmp_path / "run" / "report" / "report.md"
    assert run.prepare_record == tmp_path / "run" / "data" / "prepare.json"
    assert summary_json(run.test) == tmp_path / "run" / "test" / SUMMARY_JSON
    # every pipeline step has its own folder, and no two steps share one
    folders = [run.step_dir(step) for step in RunLayout.STEP_FOLDERS]
    assert len(set(folders)) == len(folders) and all(f.parent == run.root for f in folders)
    assert run.step_dir("train-weak") == run.weak.root and run.step_dir("train-msl") == run.msl.root
    with pytest.raises(KeyError):
        run.step_dir("no-such-step")


def test_layout_of_a_prepared_folder_and_string_paths(tmp_path):
    assert RunLayout.of_prepared(tmp_path / "run" / "data").root == (tmp_path / "run").resolve()
    assert isinstance(RunLayout(str(tmp_path)).root, Path)
    assert TrainingLayout(str(tmp_path)).best == tmp_path / "best.safetensors"


def test_previous_best_versions(tmp_path):
    files = TrainingLayout(tmp_path)
    assert files.previous_best(1).name == "best.v1.safetensors"
    assert files.previous_best(12).name == "best.v12.safetensors"
    with pytest.raises(ValueError, match=">= 1"):
        files.previous_best(0)


def test_project_folders():
    assert (PROJECT_ROOT / "wiml" / "layout.py").is_file()
    assert DEMO_RUN.root == PROJECT_ROOT / "runs" / "demo"


def test_no_other_module_spells_the_run_folder_files():
    """The file names RunLayout / TrainingLayout own appear as string constants nowhere else in wiml/."""
    import ast

    owned = {"best.safetensors", "best.json", "last.safetensors", "last.json", "state.pt", "pipeline.json"}
    owned |= {"run.lock", "strong_labels.json"}
    found = []
    for path in sorted((PROJECT_ROOT / "wiml").rglob("*.py")):
        if path.name == "layout.py" and path.parent.name == "wiml":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in owned:
                found.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno} {node.value!r}")
    assert not found, "use wiml.layout instead of spelling these paths:\n" + "\n".join(found)
