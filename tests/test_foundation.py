"""Config loading, atomic writes, manifest format, CLI dispatch."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from wiml.cli.main import main as wiml_main
from wiml.config import load_config, save_config
from wiml.data.slices import load_slice, read_manifest, save_slice, write_manifest
from wiml.errors import ConfigError, InputError, OutputError
from wiml.evaluation.metrics import dice_score, iou_score
from wiml.utils import atomic_path, atomic_write_csv, keep_previous_version, pyplot, save_figure


@dataclasses.dataclass
class _Optim:
    lr: float = 1e-3
    epochs: int = 2


@dataclasses.dataclass
class _Cfg:
    name: str = "x"
    optim: _Optim = dataclasses.field(default_factory=_Optim)
    out: Path | None = None


def test_config_yaml_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: run\noptim:\n  lr: 0.5\n")
    cfg = load_config(_Cfg, p, ["optim.epochs=7"])
    assert cfg.name == "run" and cfg.optim.lr == 0.5 and cfg.optim.epochs == 7
    save_config(cfg, tmp_path / "out.yaml")
    again = load_config(_Cfg, tmp_path / "out.yaml")
    assert again == cfg


@pytest.mark.parametrize(
    "text, match",
    [
        ("optim:\n  lr: abc\n", "expected float"),
        ("bogus: 1\n", "unknown key"),
        ("optim: [\n", "not valid YAML"),
        ("- 1\n- 2\n", "expected a YAML mapping at the top level"),
    ],
)
def test_config_errors_name_file(tmp_path, text, match):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match) as info:
        load_config(_Cfg, p)
    assert "bad.yaml" in str(info.value)


def test_config_section_must_be_a_mapping_and_file_must_exist(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train: 3\n")
    with pytest.raises(ConfigError, match="bad.yaml: train: expected a YAML mapping"):
        load_config(_Cfg, p, section="train")
    with pytest.raises(ConfigError, match="missing.yaml: config file not found"):
        load_config(_Cfg, tmp_path / "missing.yaml")


def test_atomic_path_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_write_csv_columns_blanks_and_float_format(tmp_path):
    rows = [{"name": "a", "dice": 0.123456789}, {"name": "b", "n": 3, "dice": None}]
    out = atomic_write_csv(tmp_path / "t.csv", rows, float_format=".3g")
    assert out.read_text(encoding="utf-8").splitlines() == ["name,dice,n", "a,0.123,", "b,,3"]
    atomic_write_csv(tmp_path / "u.csv", rows[:1], ["dice", "name"])
    assert (tmp_path / "u.csv").read_text(encoding="utf-8").splitlines() == ["dice,name", "0.123456789,a"]
    assert atomic_write_csv(tmp_path / "e.csv", []).read_text(encoding="utf-8") == ""
    with pytest.raises(ValueError, match="n"):
        atomic_write_csv(tmp_path / "x.csv", rows, ["name", "dice"])
    assert not (tmp_path / "x.csv").exists()


def test_save_figure_writes_png_at_dpi_and_closes(tmp_path):
    from PIL import Image

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0, 1])
    out = save_figure(fig, tmp_path / "sub" / "plot.png", dpi=50)
    assert out == tmp_path / "sub" / "plot.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(out).size == (100, 75)  # figsize 2 x 1.5 in at 50 dpi
    assert not plt.fignum_exists(fig.number)
    assert [p.name for p in out.parent.iterdir()] == ["plot.png"]  # no temporary left


def test_save_figure_closes_the_figure_when_the_write_fails(tmp_path):
    plt = pyplot()
    fig, _ = plt.subplots()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="file"):
        save_figure(fig, tmp_path / "file" / "plot.png")
    assert not plt.fignum_exists(fig.number)


def test_keep_previous_version(tmp_path):
    target = tmp_path / "m.nii.gz"
    target.write_text("1")
    assert keep_previous_version(target).name == "m.v1.nii.gz"
    assert keep_previous_version(target).name == "m.v2.nii.gz"
    assert keep_previous_version(tmp_path / "none.png") is None


def test_keep_previous_version_never_leaves_an_empty_backup(tmp_path, monkeypatch):
    import os
    import shutil

    target = tmp_path / "label.nii.gz"
    target.write_bytes(b"saved work")

    def no_link(src, dst):
        raise OSError(18, "Invalid cross-device link")

    def full_disk(src, dst, **kwargs):
        Path(dst).write_bytes(b"")  # the copy got as far as creating the file
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(shutil, "copy2", full_disk)
    with pytest.raises(OSError, match="No space"):
        keep_previous_version(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["label.nii.gz"]  # no empty label.v1.nii.gz
    monkeypatch.undo()
    backup = keep_previous_version(target)  # a hard link: the old content, kept when the file is replaced
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"new work")
    assert backup.read_bytes() == b"saved work" and target.read_bytes() == b"new work"


def test_manifest_round_trip(tmp_path):
    img = np.random.default_rng(0).random((1, 8, 8), dtype=np.float32)
    mask = np.zeros((8, 8), np.uint8)
    mask[2:4, 2:4] = 1
    save_slice(tmp_path / "slices" / "p1_0003.npz", img, mask)
    write_manifest(
        tmp_path / "manifest.csv",
        [
            dict(
                patient_id="p1",
                slice_index=3,
                file="slices/p1_0003.npz",
                tag=1,
                has_mask=1,
                split="train",
                spacing_mm="0.5,0.5,2",
                source="x.nii",
            )
        ],
    )
    (rec,) = read_manifest(tmp_path)
    assert rec.spacing_mm == (0.5, 0.5, 2.0) and rec.tag == 1 and rec.has_mask
    image, m = load_slice(rec)
    np.testing.assert_array_equal(image, img)
    np.testing.assert_array_equal(m, mask)


def test_manifest_missing_and_corrupt(tmp_path):
    with pytest.raises(InputError, match="manifest not found"):
        read_manifest(tmp_path)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an npz")
    with pytest.raises(InputError, match="bad.npz"):
        load_slice(bad)


def test_metrics_known_values():
    a = np.zeros((4, 4), np.uint8)
    b = np.zeros((4, 4), np.uint8)
    assert dice_score(a, b) == 1.0 and iou_score(a, b) == 1.0
    a[0, :2] = 1
    assert dice_score(a, b) == 0.0
    b[0, 1:3] = 1
    assert dice_score(a, b) == pytest.approx(0.5)
    assert iou_score(a, b) == pytest.approx(1 / 3)


def test_cli_unknown_subcommand(capsys):
    assert wiml_main(["nope"]) == 2
    assert "unknown subcommand" in capsys.readouterr().err


def test_enlarge_nearest():
    from wiml.utils import enlarge_nearest

    small = np.arange(6, dtype=np.uint8).reshape(2, 3)
    big = enlarge_nearest(small, 7)
    assert big.shape == (6, 9) and big[5, 8] == 5 and big[0, 2] == 0
    assert enlarge_nearest(small, 2) is small
