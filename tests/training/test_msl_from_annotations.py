"""A volume annotated in the annotator trains an MSL model: ``train-msl --strong-from annotations`` reads the
saved NIfTI label and the person's tags CSV, matched to the prepared slices of the same source."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wiml.annotator.controller import AnnotationController
from wiml.data.demo import PhantomConfig, make_demo
from wiml.data.prepare import PrepareConfig, prepare
from wiml.data.slices import load_slice, read_manifest
from wiml.errors import InputError
from wiml.training.strong_labels import annotation_strong_labels


@pytest.fixture(scope="module")
def annotated(tmp_path_factory):
    """Three phantom CT volumes prepared at 32 px; slices of a training volume annotated in the controller at
    its own 64 px resolution (robot-placed clicks), with a tag range; returns (prepared dir, result dir, names)."""
    from scipy import ndimage

    root = tmp_path_factory.mktemp("annot")
    make_demo(root / "raw", n_patients=3, config=PhantomConfig(size=64, n_slices=10), progress=False)
    cfg = PrepareConfig(input=str(root / "raw"), layout="lits", size=32)
    cfg.split.ratios = [0.34, 0.33, 0.33]
    prepare(cfg, root / "data", progress=False)
    train = read_manifest(root / "data", "train")
    source = train[0].source
    ctl = AnnotationController(result_dir=root / "result", propagate=False)
    snap = ctl.open(source)
    assert snap.ground_truth is not None  # LiTS segmentation-N found beside volume-N
    positive = [i for i in range(snap.depth) if ctl.image.ground_truth[i].any()]
    chosen = positive[len(positive) // 2 : len(positive) // 2 + 2]
    made = {}
    for index in chosen:
        ctl.set_slice(index)
        gt = ctl.ground_truth
        dist = ndimage.distance_transform_edt(gt)
        ctl.add_click(*np.unravel_index(int(dist.argmax()), gt.shape), foreground=True)
        made[index] = ctl.mask.copy()
    ctl.set_slice(positive[0])
    ctl.mark_range()
    ctl.set_slice(positive[-1])
    ctl.mark_range()
    ctl.set_tag(0, index=positive[0])  # the person disagrees with the ground truth on one slice
    ctl.save()
    return root / "data", root / "result", source, chosen, positive, made


def test_annotations_match_prepared_slices_with_person_tags(annotated):
    from wiml.data.prepare import resize_stack

    data, result, source, chosen, positive, made = annotated
    train = read_manifest(data, "train")
    masks, recordings, tags = annotation_strong_labels(train, result, read_manifest(data))
    by_index = {train[i].slice_index: i for i in masks}
    assert sorted(by_index) == chosen and len(recordings) == 2
    for slice_index, i in by_index.items():
        assert train[i].source == source
        _image, gt = load_slice(train[i])
        mask = masks[i]
        assert mask.shape == gt.shape == (32, 32)  # resized to the prepared grid
        assert np.array_equal(mask, resize_stack(made[slice_index][None], 32, is_mask=True)[0])

        def dice(a, b):
            return 2 * float((a & b).sum()) / max(int(a.sum() + b.sum()), 1)

        # same orientation, same slice: overlap with the ground truth, more than with any flip of it (one
        # click on the demo phantom leaks into the soft tissue next to the liver, so the overlap is partial)
        d = dice(mask, gt)
        assert d > 0.3 and d > max(dice(mask, gt[::-1]), dice(mask, gt[:, ::-1]), dice(mask, gt.T)), (
            slice_index
        )
    person = {train[i].slice_index: t for i, t in tags.items() if train[i].source == source}
    assert person[positive[0]] == 0 and person[positive[1]] == 1  # the person's tags, not the mask's
    assert all(t == 0 for s, t in person.items() if s > positive[-1])


def test_train_msl_from_annotations(annotated, tmp_path):
    from wiml.cli.train_msl import main

    data, result, *_ = annotated
    code = main(
        [
            "--data",
            str(data),
            "--out",
            str(tmp_path / "msl"),
            "--strong-from",
            "annotations",
            "--annotations",
            str(result),
            "--init",
            "scratch",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--set",
            "model.base_width=4",
            "--set",
            "model.depth=2",
            "--set",
            "trainer.batch_size=4",
        ]
    )
    assert code == 0
    info = json.loads((tmp_path / "msl" / "strong_labels.json").read_text())
    assert len(info["clicks"]) == 2 and (tmp_path / "msl" / "best.safetensors").is_file()


def test_annotation_of_an_unprepared_image_is_refused(annotated, tmp_path):
    data, result, *_ = annotated
    val = read_manifest(data, "val")
    with pytest.raises(InputError, match="no prepared training slice|would leak"):
        annotation_strong_labels(val, result, read_manifest(data))
