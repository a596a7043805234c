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
    assert "Not measured yet: train, infer, tiled, accuracy, flops, onnx, course." in text


def test_flop_count_is_the_convolution_and_its_weight_gradient():
    import bench_flops

    conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
    x, y = torch.randn(2, 3, 8, 8), torch.randint(0, 4, (2, 8, 8))
    forward = 2 * 2 * 8 * 8 * 4 * 3 * 9  # 2 FLOPs per multiply-add, N * H * W * C_out * C_in * 3 * 3
    assert bench_flops.training_flops(conv, x, y) == 2 * forward  # + grad of the weight; the input needs none
    assert conv.weight.grad is None
    assert bench_flops.sgemm(8)[1] == 2 * 8**3


def test_onnx_agreement_counts_flipped_class_ids():
    import bench_onnx

    model = torch.nn.Conv2d(3, 3, 1)
    shifted = torch.nn.Conv2d(3, 3, 1)
    shifted.load_state_dict(model.state_dict())
    x = torch.randn(1, 3, 8, 8)
    same = bench_onnx.agreement(model, shifted, x)
    assert same == {**same, "max_abs_diff": 0.0, "ids_differing_off_ties": 0, "near_tie_pixels": 0}
    with torch.no_grad():
        shifted.bias[0] += 100.0  # class 0 wins everywhere in the "exported" copy
        expected = int((model(x).argmax(1) != 0).sum())
    flipped = bench_onnx.agreement(model, shifted, x)
    assert flipped["ids_differing_off_ties"] == expected > 0 and flipped["max_abs_diff"] > 99
