"""Boundary F1 against a brute force that compares every pair of boundary pixels."""

import numpy as np
import pytest
import torch

from unet_helpers.boundary import boundary_counts, boundary_f1, boundary_map, tolerance_in_pixels


def brute_boundary(labels, k):
    h, w = labels.shape
    out = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            if labels[y, x] != k:
                continue
            for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                yy, xx = y + dy, x + dx
                if 0 <= yy < h and 0 <= xx < w and labels[yy, xx] != k:
                    out[y, x] = True
    return out


def brute_f1(pred, target, num_classes, dist):
    scores = []
    for k in range(num_classes):
        mp = mt = np_ = nt = 0
        for p_img, t_img in zip(pred, target):
            pb = np.argwhere(brute_boundary(p_img, k))
            tb = np.argwhere(brute_boundary(t_img, k))
            np_, nt = np_ + len(pb), nt + len(tb)
            for a, b, counter in ((pb, tb, "p"), (tb, pb, "t")):
                hits = sum(1 for q in a if len(b) and np.min(np.hypot(*(b - q).T)) <= dist)
                if counter == "p":
                    mp += hits
                else:
                    mt += hits
        if np_ == 0 and nt == 0:
            scores.append(1.0)
            continue
        p = mp / np_ if np_ else 0.0
        r = mt / nt if nt else 0.0
        scores.append(2 * p * r / (p + r) if p + r else 0.0)
    return scores


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("tolerance", [0, 1, 2.5])
def test_matches_brute_force(seed, tolerance):
    rng = np.random.default_rng(seed)
    target = np.zeros((2, 14, 12), dtype=np.int64)
    for img in target:  # a few rectangles of classes 1..3
        for _ in range(3):
            y, x = rng.integers(0, 10, 2)
            img[y : y + rng.integers(2, 6), x : x + rng.integers(2, 6)] = rng.integers(1, 4)
    pred = target.copy()
    flip = rng.random(pred.shape) < 0.08
    pred[flip] = rng.integers(0, 4, flip.sum())
    ours = boundary_f1(torch.from_numpy(pred), torch.from_numpy(target), 4, tolerance=tolerance)
    assert np.allclose(ours.numpy(), brute_f1(pred, target, 4, tolerance))


def test_boundary_map_matches_brute_force_and_ignores_image_border():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, (9, 11))
    assert np.array_equal(boundary_map(labels == 1), brute_boundary(labels, 1))
    assert not boundary_map(np.ones((5, 5), bool)).any()  # the frame edge is not a boundary


def test_shift_within_tolerance_is_perfect_and_beyond_is_not():
    square = torch.zeros(1, 40, 40, dtype=torch.long)
    square[:, 10:30, 10:30] = 1
    shifted = torch.roll(square, shifts=2, dims=2)
    assert boundary_f1(shifted, square, 2, tolerance=2)[1].item() == 1.0
    assert boundary_f1(shifted, square, 2, tolerance=1)[1].item() < 1.0


def test_tolerance_as_fraction_of_diagonal():
    assert tolerance_in_pixels(0.1, 30, 40) == pytest.approx(5.0)
    assert tolerance_in_pixels(3, 30, 40) == 3.0
    square = torch.zeros(1, 30, 40, dtype=torch.long)
    square[:, 5:25, 5:25] = 1
    shifted = torch.roll(square, shifts=4, dims=2)
    assert boundary_f1(shifted, square, 2, tolerance=0.1)[1] == boundary_f1(shifted, square, 2, tolerance=5)[1]
    with pytest.raises(ValueError, match=r"tolerance must be a number >= 0.*-1"):
        boundary_f1(shifted, square, 2, tolerance=-1)


def test_empty_conventions():
    empty = torch.zeros(1, 8, 8, dtype=torch.long)
    blob = empty.clone()
    blob[:, 2:5, 2:5] = 1
    assert boundary_f1(empty, empty, 2).tolist() == [1.0, 1.0]  # empty vs empty
    assert boundary_f1(empty, blob, 2)[1].item() == 0.0  # missed object
    assert boundary_f1(blob, empty, 2)[1].item() == 0.0  # hallucinated object


def test_accepts_2d_numpy_and_logits():
    target = np.zeros((10, 10), dtype=np.int64)
    target[3:7, 3:7] = 1
    logits = torch.nn.functional.one_hot(torch.from_numpy(target), 2).permute(2, 0, 1).float()[None]
    assert boundary_f1(logits, target, 2).tolist() == [1.0, 1.0]


def test_ignore_index_removes_boundaries_in_ignored_region():
    target = torch.zeros(1, 12, 12, dtype=torch.long)
    target[:, 2:6, 2:6] = 1
    target[:, 8:, 8:] = 255  # unlabelled corner
    pred = target.clone()
    pred[:, 8:, 8:] = 1  # whatever the model says there must not count
    pred[pred == 255] = 0
    counts = boundary_counts(pred, target, 2, tolerance=0, ignore_index=255)
    assert boundary_f1(pred, target, 2, tolerance=0, ignore_index=255).tolist() == [1.0, 1.0]
    assert counts[1, 1] == counts[1, 3] == 12  # only the 4x4 square's rim is counted


def test_errors_are_clear():
    with pytest.raises(ValueError, match=r"pred \(1, 1, 4, 4\) and target \(1, 4, 5\) do not match"):
        boundary_f1(torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 5, dtype=torch.long), 2)
    with pytest.raises(TypeError, match=r"pred must be a torch.Tensor or numpy array; got list"):
        boundary_f1([[0]], torch.zeros(1, 1, dtype=torch.long), 2)
