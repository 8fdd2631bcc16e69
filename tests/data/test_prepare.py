"""wiml prepare on tiny synthetic sets: tags, splits, normalisation, resizing, re-runs, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wiml.config import load_config
from wiml.data.io import write_slice, write_volume
from wiml.data.prepare import (
    CropConfig,
    PrepareConfig,
    SplitConfig,
    crop_positions,
    normalize_ct,
    normalize_zscore,
    prepare,
    split_counts,
    split_patients,
)
from wiml.data.slices import load_slice, read_manifest
from wiml.errors import ConfigError, InputError

from .helpers import SPACING, ct_case, write_brats2019, write_lits, write_msd, write_slice_folder


@pytest.fixture()
def lits(tmp_path):
    return write_lits(tmp_path / "lits", n=5)


def test_lits_tags_equal_mask_has_foreground_and_spacing_of_resized_grid(lits, tmp_path):
    out = tmp_path / "prep"
    summary = prepare(PrepareConfig(input=lits, size=16), out, progress=False)
    records = read_manifest(out)
    assert summary.n_slices == len(records) == 5 * 10 and summary.layout == "lits"
    for rec in records:
        image, mask = load_slice(rec)
        assert image.shape == (1, 16, 16) and image.dtype == np.float32 and mask.shape == (16, 16)
        assert 0.0 <= image.min() and image.max() <= 1.0
        assert rec.tag == int(mask.any())
    assert sorted({r.slice_index for r in records if r.tag}) == [3, 4, 5, 6]
    # (row, col, slice) mm of the 16 x 16 grid: 24 rows of 0.7 mm, 20 cols of 0.8 mm
    np.testing.assert_allclose(records[0].spacing_mm, (0.7 * 24 / 16, 0.8 * 20 / 16, 2.5), rtol=1e-5)
    patients = json.loads((out / "patients.json").read_text())
    assert patients["000"]["size"] == [20, 24, 10]
    np.testing.assert_allclose(patients["000"]["spacing"], SPACING, rtol=1e-6)
    assert (out / "config.yaml").is_file() and (out / "prepare.json").is_file()


def test_tumour_target_and_window(lits, tmp_path):
    cfg = PrepareConfig(input=lits, size=24, target="tumour", window_hu=[0.0, 100.0])
    prepare(cfg, tmp_path / "t", progress=False)
    records = read_manifest(tmp_path / "t")
    assert sorted({r.slice_index for r in records if r.tag}) == [4, 5]
    image, mask = load_slice(next(r for r in records if r.slice_index == 4))
    assert mask.sum() == 3 * 4  # the 3 x 3 px lesion only; columns resized 20 -> 24 px (nearest)
    # lesion at 20 HU -> 0.2 in a [0, 100] HU window
    values = image[0][mask > 0]
    assert np.isclose(values.min(), 0.2) and (values < 0.4).all()  # liver (60 HU) would be 0.6


@pytest.mark.parametrize(
    "n, ratios, expected",
    [
        (20, [0.7, 0.15, 0.15], (14, 3, 3)),
        (92, [0.7, 0.15, 0.15], (64, 14, 14)),
        (12, [0.7, 0.15, 0.15], (8, 2, 2)),
        (5, [0.7, 0.15, 0.15], (3, 1, 1)),
        (5, [0.6, 0.2, 0.2], (3, 1, 1)),
        (3, [0.8, 0.1, 0.1], (1, 1, 1)),
        (2, [0.8, 0.1, 0.1], (2, 0, 0)),
        (1, [0, 0, 1], (0, 0, 1)),
        (4, [1, 0, 0], (4, 0, 0)),
        (0, [0.7, 0.15, 0.15], (0, 0, 0)),
    ],
)
def test_split_counts(n, ratios, expected):
    assert split_counts(n, ratios) == expected


def test_no_patient_in_two_splits_and_seeded_split():
    ids = [f"p{i}" for i in range(20)]
    split = split_patients(ids, SplitConfig(seed=3))
    assert set(split) == set(ids)
    counts = {s: sum(v == s for v in split.values()) for s in ("train", "val", "test")}
    assert counts == {"train": 14, "val": 3, "test": 3}
    assert split == split_patients(ids, SplitConfig(seed=3))
    assert split != split_patients(ids, SplitConfig(seed=4))
    explicit = split_patients(ids, SplitConfig(test=["p0", "p1"], val=["p2"], ratios=[1, 0, 0]))
    assert explicit["p0"] == explicit["p1"] == "test" and explicit["p2"] == "val"
    assert all(explicit[p] == "train" for p in ids[3:])
    assert set(split_patients(ids[:5], SplitConfig(ratios=[0.6, 0.2, 0.2])).values()) == {
        "train",
        "val",
        "test",
    }
    assert set(split_patients(ids[:1], SplitConfig(ratios=[0, 0, 1])).values()) == {"test"}
    with pytest.raises(ConfigError, match="listed in split"):
        split_patients(ids, SplitConfig(train=["p0"], test=["p0"]))
    with pytest.raises(ConfigError, match="does not hold"):
        split_patients(ids, SplitConfig(test=["zz"]))


def test_manifest_split_is_by_patient(lits, tmp_path):
    prepare(
        PrepareConfig(input=lits, size=16, split=SplitConfig(ratios=[0.6, 0.2, 0.2])),
        tmp_path / "p",
        progress=False,
    )
    records = read_manifest(tmp_path / "p")
    by_patient = {}
    for r in records:
        by_patient.setdefault(r.patient_id, set()).add(r.split)
    assert all(len(s) == 1 for s in by_patient.values())
    assert {next(iter(s)) for s in by_patient.values()} == {"train", "val", "test"}


def test_drop_empty_margin(lits, tmp_path):
    prepare(PrepareConfig(input=lits, size=16, drop_empty_margin=1), tmp_path / "d", progress=False)
    records = read_manifest(tmp_path / "d")
    assert sorted({r.slice_index for r in records}) == [2, 3, 4, 5, 6, 7]
    assert json.loads((tmp_path / "d" / "patients.json").read_text())["001"]["slices"] == "2-7"


def test_rerun_on_unchanged_input_does_nothing(lits, tmp_path):
    out = tmp_path / "r"
    cfg = PrepareConfig(input=lits, size=16)
    first = prepare(cfg, out, progress=False)
    stamp = (out / "manifest.csv").stat().st_mtime_ns
    again = prepare(cfg, out, progress=False)
    assert not first.skipped and again.skipped and again.n_slices == first.n_slices
    assert (out / "manifest.csv").stat().st_mtime_ns == stamp
    assert not prepare(PrepareConfig(input=lits, size=20), out, progress=False).skipped  # config changed
    vol, seg = np.zeros((10, 24, 20), np.int16), np.zeros((10, 24, 20), np.uint8)
    write_volume(lits / "volume-9.nii", vol, spacing=SPACING)
    write_volume(lits / "segmentation-9.nii", seg, spacing=SPACING)
    redo = prepare(PrepareConfig(input=lits, size=20), out, progress=False)  # input changed
    assert not redo.skipped and redo.n_patients == 6
    assert prepare(PrepareConfig(input=lits, size=20), out, force=True, progress=False).skipped is False


def _assert_untouched(tmp_path, out):
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_shape_mismatch_writes_nothing(lits, tmp_path):
    write_volume(lits / "segmentation-2.nii", np.zeros((10, 24, 19), np.uint8), spacing=SPACING)
    out = tmp_path / "bad"
    with pytest.raises(InputError, match="does not match the image") as info:
        prepare(PrepareConfig(input=lits), out, progress=False)
    assert "segmentation-2.nii" in str(info.value)
    _assert_untouched(tmp_path, out)


def test_unexpected_label_values(lits, tmp_path):
    _, seg = ct_case(0)
    seg[0, 0, 0] = 7
    write_volume(lits / "segmentation-3.nii", seg, spacing=SPACING)
    with pytest.raises(InputError, match=r"unexpected label value\(s\) \[7\]") as info:
        prepare(PrepareConfig(input=lits), tmp_path / "bad", progress=False)
    assert "segmentation-3.nii" in str(info.value)
    _assert_untouched(tmp_path, tmp_path / "bad")


def test_nan_voxels_and_non_image_file(lits, tmp_path):
    vol = np.zeros((10, 24, 20), np.float32)
    vol[5, 5, 5] = np.nan
    write_volume(lits / "volume-4.nii", vol, spacing=SPACING)
    with pytest.raises(InputError, match="NaN/inf") as info:
        prepare(PrepareConfig(input=lits), tmp_path / "bad", progress=False)
    assert "volume-4.nii" in str(info.value)
    (lits / "volume-4.nii").write_text("this is not a NIfTI file")
    with pytest.raises(InputError, match="not a readable image"):
        prepare(PrepareConfig(input=lits), tmp_path / "bad", progress=False)
    _assert_untouched(tmp_path, tmp_path / "bad")


def test_existing_output_is_kept_when_a_rerun_fails(lits, tmp_path):
    out = tmp_path / "keep"
    prepare(PrepareConfig(input=lits, size=16), out, progress=False)
    before = (out / "manifest.csv").read_text()
    write_volume(lits / "segmentation-0.nii", np.full((10, 24, 20), 9, np.uint8), spacing=SPACING)
    with pytest.raises(InputError):
        prepare(PrepareConfig(input=lits, size=16), out, progress=False)
    assert (out / "manifest.csv").read_text() == before
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="refusing"):
        prepare(PrepareConfig(input=lits), foreign, progress=False)


def test_brats2019_zscore_inside_body_and_channels(tmp_path):
    root = write_brats2019(tmp_path / "b")
    prepare(PrepareConfig(input=root, channels=["flair", "t2"], size=16), tmp_path / "o", progress=False)
    records = read_manifest(tmp_path / "o")
    assert len(records) == 2 * 6 and {r.tag for r in records} == {0, 1}
    image, _ = load_slice(records[2])
    assert image.shape == (2, 16, 16)
    assert image[0, 0, 0] == 0.0  # outside the brain


def test_normalisation_functions():
    hu = np.array([-1000, -100, 50, 200, 3000], np.int16)
    np.testing.assert_allclose(normalize_ct(hu, (-100, 200)), [0, 0, 0.5, 1, 1])
    vol = np.zeros((2, 4, 4), np.float32)
    vol[:, 1:3, 1:3] = np.arange(8).reshape(2, 2, 2) * 3 + 10
    z = normalize_zscore(vol)
    inside = vol != 0
    assert abs(z[inside].mean()) < 1e-5 and abs(z[inside].std() - 1) < 1e-5 and (z[~inside] == 0).all()


def test_msd_4d_channels(tmp_path):
    root = write_msd(tmp_path / "Task", n=3, modalities=2)
    prepare(
        PrepareConfig(input=root, channels=["1"], size=12, normalize="none"), tmp_path / "o", progress=False
    )
    image, mask = load_slice(read_manifest(tmp_path / "o")[4])
    assert image.shape == (1, 12, 12) and mask is not None
    assert image.max() > 100  # component 1 holds +100


def test_slice_folder_and_crop_level_tags(tmp_path):
    root = write_slice_folder(tmp_path / "s")
    regex = r"^[a-z]+_(?P<patient>\d+)_\d+$"
    prepare(PrepareConfig(input=root, patient_regex=regex, size=32), tmp_path / "full", progress=False)
    full = read_manifest(tmp_path / "full")
    assert [r.patient_id for r in full] == ["101", "101", "102", "103"] and all(r.tag == 1 for r in full)
    image, _ = load_slice(full[0])
    assert np.isclose(image.max(), 40 / 255)
    assert full[0].spacing_mm is None
    crops = CropConfig(enabled=True, size=12, per_slice=4)
    prepare(
        PrepareConfig(input=root, patient_regex=regex, size=32, crops=crops),
        tmp_path / "crops",
        progress=False,
    )
    records = read_manifest(tmp_path / "crops")
    assert len(records) == 16 and {r.tag for r in records} == {0, 1}
    for r in records:
        image, mask = load_slice(r)
        assert image.shape == (1, 12, 12) and r.tag == int(mask.any())
        assert "#crop=" in r.source
    assert [r.slice_index for r in records if r.patient_id == "101"] == list(range(8))


def test_crop_positions_balance():
    mask = np.zeros((64, 64), np.uint8)
    mask[:10, :10] = 1
    picks = crop_positions(mask, 16, 6, np.random.default_rng(0))
    fg = [mask[r : r + 16, c : c + 16].any() for r, c in picks]
    assert sum(fg) == 3 and all(0 <= r <= 48 and 0 <= c <= 48 for r, c in picks)


def test_mask_shape_mismatch_in_slice_folder(tmp_path):
    root = write_slice_folder(tmp_path / "s", names=("a_1_1",))
    write_slice(root / "masks" / "a_1_1.png", np.zeros((30, 32), np.uint8))
    with pytest.raises(InputError, match="does not match the image"):
        prepare(PrepareConfig(input=root), tmp_path / "o", progress=False)
    _assert_untouched(tmp_path, tmp_path / "o")


def test_config_yaml_and_cli(lits, tmp_path, project_root):
    cfg = load_config(
        PrepareConfig, project_root / "configs" / "prepare_lits.yaml", ["size=16", "split.seed=2"]
    )
    assert (
        cfg.layout == "lits" and cfg.size == 16 and cfg.window_hu == [-100.0, 200.0] and cfg.split.seed == 2
    )
    from wiml.cli.main import main

    out = tmp_path / "cli"
    assert (
        main(
            [
                "prepare",
                "--input",
                str(lits),
                "--out",
                str(out),
                "--config",
                str(project_root / "configs" / "prepare_lits.yaml"),
                "--set",
                "size=16",
                "--no-progress",
            ]
        )
        == 0
    )
    assert len(read_manifest(out)) == 50
    assert main(["prepare", "--input", str(tmp_path / "missing"), "--out", str(out), "--no-progress"]) == 2
    bad = load_config(PrepareConfig, None, ["window_hu=[5, 1]", f"input={lits}"])
    with pytest.raises(ConfigError, match="window_hu"):
        prepare(bad, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_orient_lps_flips_a_flipped_volume(tmp_path):
    root = tmp_path / "flip"
    vol, seg = ct_case(0, (4, 16, 16))
    write_volume(root / "volume-0.nii", vol, direction=(-1, 0, 0, 0, -1, 0, 0, 0, 1))
    write_volume(root / "segmentation-0.nii", seg, direction=(-1, 0, 0, 0, -1, 0, 0, 0, 1))
    cfg = PrepareConfig(input=root, size=16, normalize="none")
    prepare(cfg, tmp_path / "lps", progress=False)
    prepare(PrepareConfig(input=root, size=16, normalize="none", orient=""), tmp_path / "raw", progress=False)
    lps, _ = load_slice(read_manifest(tmp_path / "lps")[3])
    raw, _ = load_slice(read_manifest(tmp_path / "raw")[3])
    np.testing.assert_array_equal(raw[0], vol[3].astype(np.float32))
    np.testing.assert_array_equal(lps[0], raw[0][::-1, ::-1])
    meta = json.loads((tmp_path / "lps" / "patients.json").read_text())["000"]
    np.testing.assert_allclose(meta["direction"], [1, 0, 0, 0, 1, 0, 0, 0, 1])


def test_missing_input_is_reported_before_a_busy_output(tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "someone_elses_file.txt").write_text("keep me")
    cfg = PrepareConfig(input=tmp_path / "nonexistent")
    with pytest.raises(InputError, match="input folder not found"):
        prepare(cfg, busy, progress=False)
    assert (busy / "someone_elses_file.txt").read_text() == "keep me"
