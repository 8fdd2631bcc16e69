"""``wiml check-data`` / :func:`wiml.data.check.check_data` on tiny prepared folders with one fault each."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from wiml.cli import check_data as check_cli
from wiml.cli import main as wiml_main
from wiml.data.check import MAX_LISTED, check_data, require_valid_data
from wiml.data.slices import load_slice, save_slice, write_manifest
from wiml.errors import InputError


def _write(folder, n_patients=3, n_slices=4, size=8, splits=("train", "val", "test")):
    """Patients p0.. with ``n_slices`` slices each; odd slices hold a 2x2 square (tag 1)."""
    rows = []
    for p in range(n_patients):
        pid = f"p{p}"
        for s in range(n_slices):
            mask = np.zeros((size, size), np.uint8)
            if s % 2:
                mask[2:4, 2:4] = 1
            rel = f"slices/{pid}/{pid}_{s:04d}.npz"
            save_slice(folder / rel, np.full((1, size, size), 0.5, np.float32), mask)
            rows.append(
                {"patient_id": pid, "slice_index": s, "file": rel, "tag": int(mask.any()), "has_mask": 1,
                 "split": splits[p % len(splits)], "spacing_mm": "1,1,2", "source": "x.nii"}
            )  # fmt: skip
    write_manifest(folder / "manifest.csv", rows)
    return folder, rows


def _edit_manifest(folder, edit):
    path = folder / "manifest.csv"
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        edit(row)
    write_manifest(path, rows)


def test_sound_folder_passes(tmp_path):
    folder, rows = _write(tmp_path / "d")
    report = check_data(folder)
    assert report.ok and report.problems == []
    assert report.n_rows == len(rows) == 12 and report.n_patients == 3
    assert report.splits == {"train": 4, "val": 4, "test": 4}


def test_corrupt_npz_one_line_naming_it(tmp_path, capsys):
    folder, _ = _write(tmp_path / "d")
    bad = folder / "slices/p1/p1_0002.npz"
    bad.write_bytes(b"this is not a zip file")
    report = check_data(folder)
    assert len(report.problems) == 1
    assert "slices/p1/p1_0002.npz" in report.problems[0] and "corrupt NPZ" in report.problems[0]
    assert wiml_main.main(["check-data", str(folder), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "p1_0002.npz" in err and "Traceback" not in err


def test_truncated_and_missing_npz(tmp_path):
    folder, _ = _write(tmp_path / "d")
    trunc = folder / "slices/p0/p0_0001.npz"
    trunc.write_bytes(trunc.read_bytes()[: trunc.stat().st_size // 2])
    (folder / "slices/p2/p2_0003.npz").unlink()
    problems = check_data(folder).problems
    assert len(problems) == 2
    assert any("p0_0001.npz: corrupt NPZ" in p for p in problems)
    assert any("p2_0003.npz: file not found" in p for p in problems)


def test_load_slice_corrupt_npz_is_input_error(tmp_path):
    path = tmp_path / "x.npz"
    path.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(InputError, match="x.npz"):
        load_slice(path)


def test_patient_in_two_splits(tmp_path):
    folder, _ = _write(tmp_path / "d")
    _edit_manifest(
        folder,
        lambda r: r.update(split="test") if r["patient_id"] == "p0" and r["slice_index"] == "3" else None,
    )
    problems = check_data(folder).problems
    assert problems == ["patient 'p0' is in more than one split (test, train)"]


def test_tag_contradicting_mask_and_person_tags(tmp_path):
    folder, _ = _write(tmp_path / "d")
    _edit_manifest(folder, lambda r: r.update(tag="0") if r["file"].endswith("p1_0001.npz") else None)
    problems = check_data(folder).problems
    assert len(problems) == 1 and "p1_0001.npz: tag 0 contradicts the mask (4 foreground px)" in problems[0]
    # the same tag, said to come from a person, is accepted
    _edit_manifest(
        folder, lambda r: r.update(tag_source="person" if r["file"].endswith("p1_0001.npz") else "mask")
    )
    assert check_data(folder).ok
    _edit_manifest(folder, lambda r: r.update(tag_source="robot"))
    assert "tag_source 'robot'" in check_data(folder).problems[0]


def test_crop_tags_use_min_foreground_px(tmp_path):
    folder, _ = _write(tmp_path / "d")
    (folder / "prepare.json").write_text(
        json.dumps({"config": {"crops": {"enabled": True, "min_foreground_px": 5}}})
    )
    problems = check_data(folder).problems  # 4 px squares fall below 5 px: their tag 1 is wrong here
    assert len(problems) == 6 and all("contradicts the mask (4 foreground px)" in p for p in problems)


def test_non_finite_shape_dtype_spacing_has_mask(tmp_path):
    folder, _ = _write(tmp_path / "d")
    img = np.full((1, 8, 8), 0.5, np.float32)
    img[0, 1, 1] = np.nan
    save_slice(folder / "slices/p0/p0_0000.npz", img, np.zeros((8, 8), np.uint8))
    np.savez(
        folder / "slices/p0/p0_0002.npz", image=np.zeros((1, 8, 8), np.int16), mask=np.zeros((8, 8), np.uint8)
    )
    np.savez(
        folder / "slices/p1/p1_0000.npz",
        image=np.zeros((1, 8, 8), np.float32),
        mask=np.zeros((7, 8), np.uint8),
    )
    np.savez(folder / "slices/p1/p1_0002.npz", image=np.zeros((1, 8, 8), np.float32))
    _edit_manifest(
        folder,
        lambda r: (
            r.update(spacing_mm="0,1,2") if r["patient_id"] == "p2" and r["slice_index"] == "0" else None
        ),
    )
    problems = check_data(folder).problems
    assert len(problems) == 5
    text = "\n".join(problems)
    assert "p0_0000.npz: image holds NaN or inf" in text
    assert "p0_0002.npz: image dtype int16" in text
    assert "p1_0000.npz: mask shape (7, 8) does not match" in text
    assert "p1_0002.npz: manifest says has_mask=1 but the NPZ has no mask" in text
    assert "p2_0000.npz: spacing_mm (0.0, 1.0, 2.0) is not positive" in text


def test_error_lists_twenty_then_count(tmp_path):
    folder, rows = _write(tmp_path / "d", n_patients=3, n_slices=10)
    for row in rows:
        (folder / row["file"]).unlink()
    with pytest.raises(InputError) as info:
        require_valid_data(folder)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(folder / "manifest.csv"))
    assert msg.count("file not found") == MAX_LISTED and msg.endswith(f"and {30 - MAX_LISTED} more")


def test_missing_manifest(tmp_path):
    with pytest.raises(InputError, match="manifest not found"):
        check_data(tmp_path)
    assert check_cli.main([str(tmp_path)]) == 2


def test_cli_ok_summary(tmp_path, capsys):
    folder, _ = _write(tmp_path / "d")
    assert check_cli.main([str(folder), "--no-progress", "--quiet"]) == 0
    assert "12 slices of 3 patients (4 test, 4 train, 4 val) OK" in capsys.readouterr().out


@pytest.mark.parametrize("step", ["train-weak", "train-msl", "test"])
def test_steps_refuse_bad_data_before_writing(tmp_path, capsys, step):
    folder, _ = _write(tmp_path / "d")
    (folder / "slices/p0/p0_0001.npz").write_bytes(b"broken")
    _edit_manifest(folder, lambda r: r.update(split="test"))  # every patient also in test
    _edit_manifest(folder, lambda r: r.update(split="train") if r["slice_index"] == "0" else None)
    _edit_manifest(folder, lambda r: r.update(tag="0") if r["file"].endswith("p2_0001.npz") else None)
    (folder / "slices/p1/p1_0002.npz").unlink()  # a deleted training slice: found before the first epoch
    out = tmp_path / "out"
    argv = [step, "--data", str(folder), "--out", str(out), "--device", "cpu"]
    if step == "test":
        argv += ["--checkpoint", str(tmp_path / "none.safetensors")]
    assert wiml_main.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "p0_0001.npz: corrupt NPZ" in err[0] and "more than one split" in err[0]
    assert "p2_0001.npz: tag 0 contradicts the mask" in err[0] and "p1_0002.npz: file not found" in err[0]
    assert not out.exists()


def test_pipeline_resume_check_names_corrupt_npz(tmp_path):
    from wiml.experiments.pipeline import check_prepared

    folder, _ = _write(tmp_path / "d")
    assert check_prepared(folder) is None
    (folder / "slices/p2/p2_0000.npz").write_bytes(b"PK broken")
    assert "p2_0000.npz: corrupt NPZ" in check_prepared(folder)
