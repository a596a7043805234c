"""Pair counting (``realdata.separation``) against a brute force over every pair of pixels."""
from itertools import combinations

import numpy as np
import pytest
import torch
from scipy import ndimage

from unet_helpers.realdata.separation import narrow_gap_pairs, pairs_kept_apart


def brute_pairs(instances, max_gap):
    """Every pair of objects whose nearest pixels are <= max_gap + 1 apart and not 8-connected in the truth."""
    ids = sorted(int(k) for k in np.unique(instances) if k > 0)
    pixels = {k: np.argwhere(instances == k) for k in ids}
    regions, _ = ndimage.label(instances > 0, structure=np.ones((3, 3)))
    pairs = []
    for a, b in combinations(ids, 2):
        gap = min(np.hypot(*(p - q)) for p in pixels[a] for q in pixels[b])
        if gap <= max_gap + 1 and regions[tuple(pixels[a][0])] != regions[tuple(pixels[b][0])]:
            pairs.append((a, b))
    return pairs


def brute_kept_apart(pred, instances, pairs):
    regions, _ = ndimage.label(pred > 0, structure=np.ones((3, 3)))
    found = {}
    for k in {k for pair in pairs for k in pair}:
        hits = [regions[tuple(p)] for p in np.argwhere(instances == k) if regions[tuple(p)] > 0]
        found[k] = max(set(hits), key=hits.count) if hits else 0  # the most frequent region (ties: any)
    both = [(found[a], found[b]) for a, b in pairs if found[a] and found[b]]
    return len(both), sum(ra != rb for ra, rb in both)


def squares(size, boxes):
    """Instance map with object k = the k-th (row, col, height, width) box."""
    instances = np.zeros(size, dtype=np.int64)
    for k, (r, c, h, w) in enumerate(boxes, start=1):
        instances[r : r + h, c : c + w] = k
    return instances


def test_gaps_of_one_to_three_pixels_count_and_touching_objects_do_not():
    # 1: gap 2 px to 2; 3 touches 2 (one region with it); 4 is 6 px away from everything
    instances = squares((20, 30), [(2, 2, 5, 5), (2, 9, 5, 5), (7, 9, 4, 5), (14, 22, 4, 4)])
    assert narrow_gap_pairs(instances) == [(1, 2), (1, 3)] == brute_pairs(instances, 3)
    assert narrow_gap_pairs(instances, max_gap=1) == []  # gap of 2 px is wider than 1


def test_a_bridging_object_makes_two_neighbours_one_region():
    instances = squares((12, 20), [(2, 2, 4, 4), (2, 8, 4, 4), (3, 6, 1, 2)])  # 3 fills the gap between 1 and 2
    assert narrow_gap_pairs(instances) == [] == brute_pairs(instances, 3)


@pytest.mark.parametrize("seed", range(6))
def test_random_maps_agree_with_the_brute_force(seed):
    rng = np.random.default_rng(seed)
    boxes = [(int(rng.integers(0, 20)), int(rng.integers(0, 20)), int(rng.integers(1, 5)), int(rng.integers(1, 5)))
             for _ in range(7)]
    instances = squares((24, 24), boxes)  # later boxes overwrite earlier ones: odd shapes, missing ids
    pairs = narrow_gap_pairs(torch.from_numpy(instances), max_gap=2)
    assert pairs == brute_pairs(instances, 2)
    pred = (rng.random((24, 24)) < 0.5).astype(np.int64) | (instances > 0)
    assert pairs_kept_apart(pred, instances, pairs) == brute_kept_apart(pred, instances, pairs)


def test_a_bleed_across_the_gap_merges_the_pair():
    instances = squares((10, 20), [(2, 2, 4, 4), (2, 8, 4, 4)])
    pairs = narrow_gap_pairs(instances)
    assert pairs == [(1, 2)]
    exact = (instances > 0).astype(np.int64)
    assert pairs_kept_apart(exact, instances, pairs) == (1, 1)
    bled = exact.copy()
    bled[3, 6:8] = 1  # two pixels of bridge
    assert pairs_kept_apart(bled, instances, pairs) == (1, 0)
    missed = exact.copy()
    missed[instances == 2] = 0
    assert pairs_kept_apart(missed, instances, pairs) == (0, 0)


def test_bad_inputs_say_what_was_wrong():
    with pytest.raises(ValueError, match="max_gap must be an int >= 1"):
        narrow_gap_pairs(np.zeros((4, 4), dtype=np.int64), max_gap=0)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        narrow_gap_pairs(np.zeros((2, 4, 4), dtype=np.int64))
    with pytest.raises(TypeError, match="integer"):
        narrow_gap_pairs(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="must be >= 0"):
        narrow_gap_pairs(-np.ones((4, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="same"):
        pairs_kept_apart(np.zeros((4, 5), dtype=np.int64), np.zeros((4, 4), dtype=np.int64), [])
