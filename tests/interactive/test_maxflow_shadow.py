"""A ``maxflow`` package that shadows SimpleCRF's (as PyMaxflow installs one): one line naming its file."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from wiml.cli import main as wiml_main
from wiml.errors import DependencyError
from wiml.interactive import graphcut
from wiml.interactive.session import RefinementSession


@pytest.fixture()
def shadowed(tmp_path, monkeypatch):
    """A PyMaxflow-like ``maxflow`` package first on the path; SimpleCRF's is restored afterwards."""
    import maxflow  # noqa: F401  (SimpleCRF's, so that monkeypatch puts it back into sys.modules)

    pkg = tmp_path / "maxflow"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("class GraphFloat:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "maxflow", raising=False)
    graphcut._maxflow.cache_clear()
    yield pkg / "__init__.py"
    monkeypatch.undo()
    graphcut._maxflow.cache_clear()


def test_graph_cut_names_the_shadowing_file(shadowed):
    img = np.zeros((8, 8), np.float32)
    with pytest.raises(DependencyError) as info:
        graphcut.graph_cut(img, np.full((8, 8), 0.5, np.float32), 5.0, 0.1)
    msg = str(info.value)
    assert str(shadowed) in msg and "not SimpleCRF's" in msg and "pip uninstall PyMaxflow" in msg
    assert "\n" not in msg


def test_refinement_fails_with_dependency_error(shadowed):
    session = RefinementSession()
    session.set_image(np.random.default_rng(0).random((16, 16)).astype(np.float32))
    with pytest.raises(DependencyError, match="maxflow"):
        session.add_click(8, 8, True)


def test_doctor_reports_the_shadow_and_the_fix(shadowed, capsys):
    assert wiml_main.main(["doctor"]) == 1
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "SimpleCRF" in x and "FAIL" in x)
    assert str(shadowed) in line
    assert "fix:" in out and "1 fix" not in out and "fix: SimpleCRF" in out.splitlines()[-1]


def test_check_maxflow_accepts_simplecrf():
    module = graphcut.check_maxflow()
    assert hasattr(module, "interactive_maxflow2d")


def test_doctor_all_ok(capsys):
    assert wiml_main.main(["doctor"]) == 0
    out = capsys.readouterr().out
    for name in (
        "Python",
        "torch",
        "NumPy",
        "SimpleITK",
        "MONAI",
        "GeodisTK",
        "SimpleCRF",
        "FastGeodis",
        "PyQt5",
    ):
        assert f"ok    {name} " in out
    assert "CUDA" in out and out.strip().endswith("9 of 9 OK")
