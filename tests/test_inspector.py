"""The mask inspector: each cause constructed on purpose must be named; numbers against brute force."""
import json
import math
from collections import Counter, deque

import numpy as np
import pytest
import torch
from scipy import ndimage

from unet_helpers.boundary import boundary_f1
from unet_helpers.inspector import InspectorSettings, inspect_masks


def disk(mask, cy, cx, r, value):
    yy, xx = np.mgrid[: mask.shape[0], : mask.shape[1]]
    mask[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = value


def scene(seed, size=96, large=(1, 2), small=(0, 0), classes=(1, 2), large_r=(9, 13), small_r=(1, 3)):
    """Non-overlapping disks: ``large`` and ``small`` count ranges per image, class drawn from ``classes``."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), np.int64)
    taken = np.zeros_like(mask, bool)
    for count_range, radius_range in ((large, large_r), (small, small_r)):
        for _ in range(int(rng.integers(count_range[0], count_range[1] + 1))):
            for _attempt in range(100):
                r = int(rng.integers(radius_range[0], radius_range[1] + 1))
                cy, cx = (int(v) for v in rng.integers(r + 2, size - r - 2, 2))
                probe = np.zeros_like(taken)
                disk(probe, cy, cx, r + 3, True)
                if not (probe & taken).any():
                    disk(mask, cy, cx, r, int(rng.choice(classes)))
                    taken |= probe
                    break
    return mask


def cause_of(report, name):
    return {d.class_name: d.cause for d in report.diagnoses}.get(name)


def test_eroded_objects_are_diagnosed_as_boundary():
    targets = [scene(s, large=(2, 3)) for s in range(6)]
    preds = []
    for t in targets:
        p = np.zeros_like(t)
        for k in (1, 2):
            p[ndimage.binary_erosion(t == k, iterations=2)] = k  # every object loses a 2-px rim
        preds.append(p)
    report = inspect_masks(preds, targets, num_classes=3, class_names=["bg", "a", "b"])
    for name in ("a", "b"):
        c = next(c for c in report.classes if c.name == name)
        assert c.weak and cause_of(report, name) == "boundary"
        assert c.boundary_flag and not c.small_object_flag
        assert c.errors["boundary"] == c.wrong_pixels  # a 2-px rim lies inside a 2-px band
        assert c.band_iou < 0.5 and c.interior_iou == 1.0  # the band keeps some diagonal neighbours of the rim
        assert c.boundary_missed > 0 and c.boundary_extra == 0  # objects too thin, not too fat
    assert "too thin" in report.to_markdown()


def test_dropped_small_objects_are_diagnosed_as_small_objects():
    targets = [scene(s, large=(1, 1), small=(6, 9), classes=(1,), large_r=(7, 9), small_r=(2, 4)) for s in range(6)]
    preds = []
    for t in targets:
        labels, _ = ndimage.label(t == 1, structure=np.ones((3, 3)))
        sizes = np.bincount(labels.ravel())
        preds.append(np.where((labels > 0) & (sizes[labels] >= 64), 1, 0))  # drop objects under 64 px
    report = inspect_masks(preds, targets, settings=InspectorSettings(small_object_size=64))
    fg = report.classes[1]
    assert fg.weak and cause_of(report, "class 1") == "small_objects"
    assert fg.small_object_flag and fg.small_objects["recall"] == 0.0 and fg.large_objects["recall"] == 1.0
    assert fg.errors["missed_small_objects"] == fg.wrong_pixels
    assert report.classes[0].weak is False


def test_rare_class_almost_never_predicted_is_diagnosed_as_imbalance():
    targets, preds = [], []
    for s in range(6):
        t = scene(s, size=96, large=(3, 3), classes=(1,), large_r=(12, 16))
        rare = scene(100 + s, size=96, large=(1, 1), small=(1, 1), classes=(2,), large_r=(5, 6), small_r=(2, 3))
        t = np.where((rare == 2) & (t == 0), 2, t)
        p = np.where(t == 2, 0, t)
        if s == 0:  # the class is predicted almost never: one pixel of it in one image
            p[tuple(np.argwhere(t == 2)[0])] = 2
        targets.append(t)
        preds.append(p)
    report = inspect_masks(preds, targets, class_names=["background", "common", "rare"])
    rare = report.classes[2]
    assert rare.share_flag == "under" and "rare" in report.under_predicted
    assert cause_of(report, "rare") == "imbalance" and "under-predicted" in report.diagnoses[-1].summary
    assert not rare.small_object_flag  # large rare objects are missed just as much
    assert cause_of(report, "common") is None


def test_false_alarms_far_from_objects_are_over_prediction():
    targets = [scene(s, large=(1, 1), classes=(1,)) for s in range(4)]
    preds = []
    for t in targets:
        p = t.copy()
        free = ndimage.distance_transform_edt(t == 0) > 8
        p[free & (np.add.outer(np.arange(96), np.arange(96)) % 7 < 3)] = 1  # stripes of false alarms
        preds.append(p)
    report = inspect_masks(preds, targets)
    c = report.classes[1]
    assert c.share_flag == "over" and cause_of(report, "class 1") == "imbalance"
    assert "over-predicted" in next(d.summary for d in report.diagnoses if d.class_id == 1)


def test_swapped_classes_at_the_right_amount_are_confusion():
    targets = [scene(s, large=(2, 2), classes=(1,), large_r=(10, 10)) for s in range(4)]
    for t in targets:  # one object of class 1, one identical-size object of class 2 per image
        labels, _ = ndimage.label(t == 1)
        t[labels == 2] = 2
    preds = [np.select([t == 1, t == 2], [2, 1], 0) for t in targets]  # the two classes swapped
    report = inspect_masks(preds, targets, class_names=["bg", "a", "b"])
    assert cause_of(report, "a") == "confusion" and cause_of(report, "b") == "confusion"
    assert report.classes[1].confused_with == "b" and report.classes[1].share_flag is None


# ---------- exact numbers against brute force --------------------------------------------------


def flood_fill_objects(mask, connectivity=8):
    """Connected components by breadth-first search: list of pixel lists."""
    h, w = mask.shape
    seen = np.zeros_like(mask, bool)
    steps = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    if connectivity == 4:
        steps = [(1, 0), (-1, 0), (0, 1), (0, -1)]
    objects = []
    for y in range(h):
        for x in range(w):
            if mask[y, x] and not seen[y, x]:
                queue, pixels = deque([(y, x)]), []
                seen[y, x] = True
                while queue:
                    cy, cx = queue.popleft()
                    pixels.append((cy, cx))
                    for dy, dx in steps:
                        ny, nx = cy + dy, cx + dx
                        if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                            seen[ny, nx] = True
                            queue.append((ny, nx))
                objects.append(pixels)
    return objects


def random_pair(rng, h, w, k):
    true = ndimage.median_filter(rng.integers(0, k, (h, w)), size=3)  # blobs of many sizes
    pred = np.where(rng.random((h, w)) < 0.15, rng.integers(0, k, (h, w)), true)
    return true.astype(np.int64), pred.astype(np.int64)


@pytest.mark.parametrize("connectivity", [4, 8])
def test_distribution_and_size_bucket_recall_match_brute_force(connectivity):
    rng = np.random.default_rng(7)
    pairs = [random_pair(rng, h, w, 3) for h, w in ((23, 31), (40, 17), (32, 32))]
    trues, preds = [p[0] for p in pairs], [p[1] for p in pairs]
    settings = InspectorSettings(size_buckets=(2, 5, 20), small_object_size=5, connectivity=connectivity, found_fraction=0.6)
    report = inspect_masks(preds, trues, num_classes=3, settings=settings)
    true_counts = Counter(v for t in trues for v in t.ravel().tolist())
    pred_counts = Counter(v for p in preds for v in p.ravel().tolist())
    total = sum(true_counts.values())
    edges = (0, 2, 5, 20, 10**9)
    for k, c in enumerate(report.classes):
        assert c.true_share == pytest.approx(true_counts[k] / total, abs=1e-12)
        assert c.pred_share == pytest.approx(pred_counts[k] / total, abs=1e-12)
        buckets = np.zeros((4, 2), int)
        for t, p in zip(trues, preds):
            for pixels in flood_fill_objects(t == k, connectivity):
                hit = sum(p[y, x] == k for y, x in pixels)
                b = next(i for i in range(4) if edges[i] <= len(pixels) < edges[i + 1])
                buckets[b] += (1, hit >= 0.6 * len(pixels))
        assert [(o["objects"], o["found"]) for o in c.objects] == [tuple(b) for b in buckets.tolist()]
        for o, (n, f) in zip(c.objects, buckets.tolist()):
            assert o["recall"] == f / n if n else math.isnan(o["recall"])
        assert c.small_objects["objects"] == buckets[:2, 0].sum() and c.small_objects["found"] == buckets[:2, 1].sum()
        inter = sum(((t == k) & (p == k)).sum() for t, p in zip(trues, preds))
        union = sum(((t == k) | (p == k)).sum() for t, p in zip(trues, preds))
        assert c.iou == pytest.approx(inter / union, abs=1e-12)
        assert c.wrong_pixels == union - inter
    same_size = [(t, p) for t, p in zip(trues, preds) if t.shape == (32, 32)]
    expected_bf1 = boundary_f1(np.stack([p for _, p in same_size]), np.stack([t for t, _ in same_size]), 3)
    alone = inspect_masks([p for _, p in same_size], [t for t, _ in same_size], num_classes=3)
    assert [c.boundary_f1 for c in alone.classes] == expected_bf1.tolist()


def test_band_iou_matches_brute_force_distances():
    rng = np.random.default_rng(3)
    true, pred = random_pair(rng, 18, 21, 2)
    report = inspect_masks(pred[None], true[None], settings=InspectorSettings(band_width=2))
    h, w = true.shape
    for k in range(2):
        edge = [
            (y, x) for y in range(h) for x in range(w)
            if any(0 <= y + dy < h and 0 <= x + dx < w and (true[y + dy, x + dx] == k) != (true[y, x] == k)
                   for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)))
        ]
        band = np.array([[min(np.hypot(y - ey, x - ex) for ey, ex in edge) < 2 for x in range(w)] for y in range(h)])
        t, p = true == k, pred == k
        c = report.classes[k]
        assert c.band_iou == pytest.approx((t & p & band).sum() / ((t | p) & band).sum())
        assert c.interior_iou == pytest.approx((t & p & ~band).sum() / ((t | p) & ~band).sum())


def test_inputs_torch_lists_and_ignore_index():
    rng = np.random.default_rng(1)
    true, pred = random_pair(rng, 20, 20, 3)
    true[:5] = 255
    other = pred.copy()
    other[:5] = (other[:5] + 1) % 3  # predictions on ignored pixels change nothing
    a = inspect_masks(torch.from_numpy(pred)[None], torch.from_numpy(true)[None], num_classes=3, ignore_index=255)
    b = inspect_masks([other], [true], num_classes=3, ignore_index=255)
    assert a.to_dict() == b.to_dict() and a.num_pixels == 15 * 20


def test_report_is_json_and_markdown():
    targets = [scene(s, large=(1, 2), small=(1, 3)) for s in range(2)]
    preds = [np.zeros_like(t) for t in targets]  # predicts nothing: NaN precision and ratios, null in JSON
    report = inspect_masks(preds, targets, num_classes=4, class_names=["bg", "a", "b", "never"])
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["classes"][3]["iou"] is None and data["classes"][3]["share_ratio"] is None
    assert math.isnan(report.classes[3].iou) and math.isnan(report.classes[3].share_ratio)
    assert data["under_predicted"] == ["a", "b"] and data["settings"]["band_width"] == 2
    text = report.to_markdown()
    for heading in ("## Diagnosis", "## Class distribution", "## Scores per class", "## Boundary band", "## Object recall by size"):
        assert heading in text
    assert len(data["diagnoses"]) == len(report.diagnoses) == 2


def test_bad_inputs_are_explained():
    a = np.zeros((1, 8, 8), np.int64)
    with pytest.raises(ValueError, match="got 2 predicted masks but 1 true masks"):
        inspect_masks([a[0], a[0]], a)
    with pytest.raises(ValueError, match=r"image 0: prediction is 8x8 but the true mask is 8x9"):
        inspect_masks(a, np.zeros((1, 8, 9), np.int64))
    with pytest.raises(TypeError, match="must hold integer class ids; got dtype float32"):
        inspect_masks(a.astype(np.float32), a)
    with pytest.raises(ValueError, match=r"class_names has 1 names but there are 2 classes"):
        inspect_masks(a, a, num_classes=2, class_names=["x"])
    with pytest.raises(ValueError, match="preds\\[0\\] has class id 255 but num_classes=2; predicted masks saved as 0/255"):
        inspect_masks(a + 255, a, num_classes=2)
    with pytest.raises(ValueError, match="must be \\(N, H, W\\) or a list"):
        inspect_masks(np.zeros((1, 1, 8, 8), np.int64), a)
    with pytest.raises(TypeError, match="must be a numpy array, a torch.Tensor or a list"):
        inspect_masks("masks", a)
    with pytest.raises(ValueError, match="no masks to inspect"):
        inspect_masks([], [])
    with pytest.raises(ValueError, match="class ids must be >= 0"):
        inspect_masks(a - 1, a)
    with pytest.raises(ValueError, match="num_classes must be an int >= 1"):
        inspect_masks(a, a, num_classes=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"band_width": 0}, "band_width must be an int >= 1"),
        ({"size_buckets": (64, 16)}, "size_buckets must be increasing"),
        ({"connectivity": 6}, "connectivity must be 4 or 8"),
        ({"found_fraction": 0}, "found_fraction must be in"),
        ({"under_ratio": 1.2}, "need 0 < under_ratio < 1 < over_ratio"),
    ],
)
def test_bad_settings_are_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InspectorSettings(**kwargs)
