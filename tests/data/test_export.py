"""``wiml export``: annotator results -> nnU-Net v2 / MSD raw dataset with the source geometry; unannotated
slices get the ignore label, slices tagged absent are background; nnU-Net's own integrity check when present."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from wiml.annotator.controller import AnnotationController
from wiml.data.export import IGNORE_LABEL, export_annotations
from wiml.errors import InputError


def test_export_nnunet_volume_with_ignore_label(nifti_case, tmp_path, interior_point):
    ctl = AnnotationController(result_dir=tmp_path / "result", propagate=False)
    ctl.open(nifti_case)
    masks = {}
    for index in (1, 2):
        ctl.set_slice(index)
        ctl.add_click(*interior_point(ctl.ground_truth), foreground=True)
        masks[index] = ctl.mask.copy()
    ctl.set_tag(0, index=4)
    ctl.save()
    summary = export_annotations(tmp_path / "result", tmp_path / "raw", "nnunet", 7, "Test")
    folder = tmp_path / "raw" / "Dataset007_Test"
    assert summary.dataset_dir == folder and summary.cases == ["vol"] and summary.labelled_slices == [3]
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta["labels"] == {"background": 0, "target": 1, "ignore": 2} and meta["numTraining"] == 1
    image = sitk.ReadImage(str(folder / "imagesTr" / "vol_0000.nii.gz"))
    label = sitk.ReadImage(str(folder / "labelsTr" / "vol.nii.gz"))
    source = sitk.ReadImage(str(nifti_case))
    for img in (image, label):  # the source geometry, voxel for voxel
        assert img.GetSize() == source.GetSize() and np.allclose(img.GetSpacing(), source.GetSpacing())
        assert np.allclose(img.GetOrigin(), source.GetOrigin())
        assert np.allclose(img.GetDirection(), source.GetDirection())
    assert np.array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(source))
    arr = sitk.GetArrayFromImage(label)[:, ::-1]  # the file is LAS; the annotator showed LPS
    for index, mask in masks.items():
        assert np.array_equal(arr[index], mask)
    assert (arr[4] == 0).all() and (arr[0] == IGNORE_LABEL).all() and (arr[3] == IGNORE_LABEL).all()


def test_export_msd_from_a_dicom_series(dicom_case, tmp_path, interior_point):
    ctl = AnnotationController(result_dir=tmp_path / "result", propagate=False)
    ctl.open(dicom_case)
    ctl.set_slice(1)
    ctl.add_click(20, 24, foreground=True)
    ctl.save()
    summary = export_annotations(tmp_path / "result", tmp_path / "msd", "msd", name="Organ")
    meta = json.loads((summary.dataset_dir / "dataset.json").read_text())
    assert meta["training"] == [
        {"image": "./imagesTr/PATIENT_DICOM.nii.gz", "label": "./labelsTr/PATIENT_DICOM.nii.gz"}
    ]
    image = sitk.ReadImage(str(summary.dataset_dir / "imagesTr" / "PATIENT_DICOM.nii.gz"))
    assert image.GetSize() == (48, 40, 3) and np.allclose(image.GetSpacing(), (0.7, 0.7, 2.0))
    label = sitk.GetArrayFromImage(
        sitk.ReadImage(str(summary.dataset_dir / "labelsTr" / "PATIENT_DICOM.nii.gz"))
    )
    assert label[1].max() == 1 and (label[[0, 2]] == IGNORE_LABEL).all()


def test_export_refuses_empty_and_bad_arguments(tmp_path):
    with pytest.raises(InputError, match="no annotation"):
        export_annotations(tmp_path, tmp_path / "out")
    with pytest.raises(InputError, match="format"):
        export_annotations(tmp_path, tmp_path / "out", "zip")
    with pytest.raises(InputError, match="1..999"):
        export_annotations(tmp_path, tmp_path / "out", dataset_id=1000)


def test_nnunet_integrity_check_accepts_the_export(nifti_case, tmp_path, interior_point, monkeypatch):
    pytest.importorskip(
        "nnunetv2", reason="nnunetv2 not installed (optional extra: pip install 'wiml[nnunet]')"
    )
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    ctl = AnnotationController(result_dir=tmp_path / "result", propagate=False)
    ctl.open(nifti_case)
    ctl.add_click(*interior_point(ctl.ground_truth), foreground=True)
    ctl.save()
    summary = export_annotations(tmp_path / "result", tmp_path / "raw", "nnunet", 8, "Check")
    verify_dataset_integrity(str(summary.dataset_dir), num_processes=1)  # raises on any problem
