"""Exercise 12's reference evidence agrees with the mask inspector (an independent implementation),
and its drawn scene has the numbers worked out by hand in its docstring."""
from __future__ import annotations

import math

import numpy as np
import pytest

from unet_helpers.checks.ex12_broken_models import DEFECTS
from unet_helpers.checks.ex12_diagnosis import _evidence_case, drawn_scene, reference_evidence
from unet_helpers.inspector import inspect_masks

CASES = {"drawn scene": drawn_scene(), **{defect: _evidence_case(defect, 7) for defect in DEFECTS}}


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


@pytest.mark.parametrize("name", list(CASES))
def test_reference_evidence_agrees_with_the_inspector(name):
    preds, targets, k = CASES[name]
    ours = reference_evidence(preds, targets, k)
    theirs = inspect_masks(preds, targets, num_classes=3).classes[k]
    pairs = {"band_iou": theirs.band_iou, "interior_iou": theirs.interior_iou, "share_ratio": theirs.share_ratio,
             "small_recall": theirs.small_objects["recall"], "large_recall": theirs.large_objects["recall"]}
    for key, value in pairs.items():
        assert _same(ours[key], value), (key, ours[key], value)
    missed = np.bincount(preds[(targets == k) & (preds != k)], minlength=3)  # brute force over the missed pixels
    assert ours["confused_with"] == (int(missed.argmax()) if missed.any() else None)


def test_the_drawn_scene_has_the_numbers_of_its_docstring():
    preds, targets, k = drawn_scene()
    evidence = reference_evidence(preds, targets, k)
    assert evidence["small_recall"] == 1.0 and evidence["large_recall"] == pytest.approx(2 / 3)
    assert evidence["confused_with"] == 2
    missed = preds[(targets == 1) & (preds != 1)]
    assert (missed == 2).sum() == 70 and (missed == 0).sum() == 52


@pytest.mark.parametrize("slip", [dict(connectivity=4), dict(found_share=1e-9), dict(found_share=1.0),
                                  dict(inclusive_small=True), dict(partner="least")], ids=str)
def test_every_slip_of_the_object_and_confusion_rules_changes_the_drawn_scene(slip):
    preds, targets, k = drawn_scene()
    keys = ("small_recall", "large_recall", "confused_with")
    reference = reference_evidence(preds, targets, k)
    slipped = reference_evidence(preds, targets, k, **slip)
    assert any(reference[key] != slipped[key] for key in keys)
