"""Dataset finders on tiny synthetic files in each layout."""

from __future__ import annotations

import numpy as np
import pytest

from wiml.data.datasets import (
    detect_layout,
    find_brats2019,
    find_cases,
    find_lits,
    find_msd,
    find_slice_folders,
    parse_target,
    resolve_target,
)
from wiml.errors import InputError

from .helpers import write_brats2019, write_lits, write_msd, write_slice_folder


def test_lits_pairs_volumes_and_segmentations(tmp_path):
    write_lits(tmp_path / "lits" / "Training Batch 1", n=3)
    cases = find_lits(tmp_path / "lits")
    assert [c.patient_id for c in cases] == ["000", "001", "002"]
    assert all(c.mask is not None and c.mask.name.startswith("segmentation-") for c in cases)
    assert detect_layout(tmp_path / "lits") == "lits"


def test_lits_segmentation_without_volume_is_an_error(tmp_path):
    root = write_lits(tmp_path / "lits", n=2)
    (root / "volume-1.nii").unlink()
    with pytest.raises(InputError, match="mask without an image") as info:
        find_lits(root)
    assert "segmentation-1.nii" in str(info.value)


def test_brats2019_stacks_chosen_channels(tmp_path):
    root = write_brats2019(tmp_path / "brats")
    cases = find_brats2019(root, ["flair", "t1ce"])
    assert [c.patient_id for c in cases] == ["BraTS19_A_1", "BraTS19_B_1"]
    assert [ch.path.name for ch in cases[0].channels] == [
        "BraTS19_A_1_flair.nii.gz",
        "BraTS19_A_1_t1ce.nii.gz",
    ]
    assert cases[0].label_values == (0, 1, 2, 4)
    assert detect_layout(root) == "brats2019"
    with pytest.raises(InputError, match="unknown BraTS channel"):
        find_brats2019(root, ["dwi"])
    (root / "HGG" / "BraTS19_A_1" / "BraTS19_A_1_t1ce.nii.gz").unlink()
    with pytest.raises(InputError, match="mask without an image"):
        find_brats2019(root, ["t1ce"])


def test_msd_reads_dataset_json_and_4d_channels(tmp_path):
    cases = find_msd(write_msd(tmp_path / "Task03", n=2))
    assert [c.patient_id for c in cases] == ["liver_0", "liver_1"]
    assert cases[0].modality == "ct" and cases[0].label_values == (0, 1, 2)
    cases = find_msd(write_msd(tmp_path / "Task01", n=1, modalities=3), ["0", "2"])
    assert [(ch.name, ch.index) for ch in cases[0].channels] == [("0", 0), ("2", 2)]
    assert cases[0].modality == "mr"
    with pytest.raises(InputError, match="out of range"):
        find_msd(tmp_path / "Task01", ["3"])


def test_slice_folders_group_by_patient_regex(tmp_path):
    root = write_slice_folder(tmp_path / "slices")
    cases = find_slice_folders(root, r"^[a-z]+_(?P<patient>\d+)_\d+$")
    assert {c.patient_id: len(c.items) for c in cases} == {"101": 2, "102": 1, "103": 1}
    assert [it.image.name for it in cases[0].items] == [
        "flipped_101_5.png",
        "flipped_101_7.png",
    ]  # natural order
    assert all(it.mask is not None for c in cases for it in c.items)
    assert len(find_slice_folders(root)) == 4  # no regex: one patient per slice
    with pytest.raises(InputError, match="does not match patient_regex"):
        find_slice_folders(root, r"^case(\d+)")


def test_slice_folder_mask_without_image_and_empty_folders(tmp_path):
    root = write_slice_folder(tmp_path / "s", names=("a_1_1", "a_1_2"))
    (root / "images" / "a_1_2.png").unlink()
    with pytest.raises(InputError, match="mask without an image") as info:
        find_slice_folders(root)
    assert "a_1_2.png" in str(info.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="empty folder"):
        find_cases(empty)
    with pytest.raises(InputError, match="not found"):
        find_cases(tmp_path / "nowhere")
    (empty / "images").mkdir()
    (empty / "images" / "readme.txt").write_text("x")
    with pytest.raises(InputError, match="no 2-D images"):
        find_slice_folders(empty)


def test_targets():
    labels = np.array([0, 1, 2, 4])
    assert parse_target(resolve_target("lits", "liver"))(labels).tolist() == [False, True, True, True]
    assert parse_target(resolve_target("lits", "tumour"))(labels).tolist() == [False, False, True, False]
    assert parse_target(resolve_target("brats2019", ""))(labels).tolist() == [False, True, True, True]
    assert parse_target("1,4")(labels).tolist() == [False, True, False, True]
    with pytest.raises(InputError, match="target"):
        resolve_target("lits", "spleen")


def test_project_sample_folders(project_root):
    cases = find_slice_folders(project_root / "data_source")
    assert len(cases) == 5 and all(
        it.mask is not None and it.mask.parent.name == "label" for c in cases for it in c.items
    )
    cases = find_slice_folders(project_root / "test_data")
    assert [c.patient_id for c in cases] == ["1", "2", "3", "4", "5"]
