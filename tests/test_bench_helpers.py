"""The benchmark helpers: metric implementations agree exactly, and the runner still runs.

Nothing here times anything (speed is measured in benchmarks/, never asserted).
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_metrics  # noqa: E402


@pytest.mark.parametrize("ids", [False, True])
def test_confusion_matrix_torchmetrics_and_naive_loop_count_the_same(ids):
    batches = bench_metrics.make_batches(3, num_classes=5, size=24, batch=2, seed=1)
    if ids:
        batches = bench_metrics.as_ids(batches)
    counts = bench_metrics.check_identical(batches, 5)
    theirs = bench_metrics.torchmetrics_jaccard(batches, 5)
    assert counts["matrix"] == theirs.confmat.long().tolist()
    intersection, union = bench_metrics.naive(batches, 5)
    ours = bench_metrics.ours(batches, 5)
    assert torch.equal(ours.true_positives, intersection)
    assert torch.equal(ours.iou(), bench_metrics.naive_iou(intersection, union))
    assert torch.allclose(ours.iou().float(), theirs.compute(), rtol=1e-6, atol=0)


def test_agreement_check_catches_a_wrong_count(monkeypatch):
    batches = bench_metrics.make_batches(1, num_classes=3, size=16, batch=2)
    real = bench_metrics.ours

    def off_by_one(batches, k):
        cm = real(batches, k)
        cm.matrix[0, 1] += 1
        return cm

    monkeypatch.setattr(bench_metrics, "ours", off_by_one)
    with pytest.raises(RuntimeError, match="confusion matrices differ"):
        bench_metrics.check_identical(batches, 3)


def test_runner_quick_metrics_writes_results_and_benchmarks_md(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    command = [sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--quick", "--parts", "metrics", "--threads", "1",
               "--results-dir", str(tmp_path / "results"), "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads((tmp_path / "results" / "metrics.json").read_text())
    assert data["meta"]["quick"] is True and data["goals"][0]["goal"].startswith("metric accumulation")
    text = out.read_text()
    assert "## Metric accumulation: ConfusionMatrix vs torchmetrics MulticlassJaccardIndex" in text
    assert "| naive per-class loop |" in text and "Quick smoke run: not a measurement" in text
    assert "Not measured yet: train, infer, tiled, accuracy, course." in text
