"""Data-parallel helpers, two gloo processes on CPU, and ``torchrun ... train`` end to end."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DistributedSampler

from unet_helpers.checkpoint import load_checkpoint
from unet_helpers.losses import CombinedLoss
from unet_helpers.data import ArrayDataset, synthetic_segmentation
from unet_helpers.cli.distributed import (
    DistributedContext,
    EpochLoader,
    ShardSampler,
    replicas_identical,
    setup_distributed,
    sync_buffers,
    wrap_model,
)
from unet_helpers.loaders import make_loader
from unet_helpers.train import evaluate
from unet_helpers.unet import UNet

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("length, world", [(5, 2), (6, 2), (7, 3), (3, 3), (10, 4)])
def test_shard_sampler_takes_every_index_exactly_once(length, world):
    shards = [list(ShardSampler(length, rank, world)) for rank in range(world)]
    assert sorted(i for shard in shards for i in shard) == list(range(length))
    assert [len(ShardSampler(length, rank, world)) for rank in range(world)] == [len(s) for s in shards]


def test_distributed_sampler_pads_with_duplicates_which_validation_must_avoid():
    padded = [i for rank in range(2) for i in DistributedSampler(range(5), 2, rank, shuffle=False)]
    assert len(padded) == 6 and len(set(padded)) == 5  # one image would be counted twice


def test_shard_sampler_errors():
    with pytest.raises(ValueError, match=r"1 validation item\(s\) cannot be shared by 2 processes"):
        ShardSampler(1, 0, 2)
    with pytest.raises(ValueError, match="need 0 <= rank < world_size; got rank=2, world_size=2"):
        ShardSampler(4, 2, 2)


def test_single_process_context_without_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    context = setup_distributed("cpu")
    assert context == DistributedContext() and context.is_main and not context.enabled
    assert not dist.is_initialized()
    model = torch.nn.Linear(2, 2)
    assert wrap_model(model, context) is model and replicas_identical(model)


def test_epoch_loader_cuts_epochs_and_calls_the_hook():
    calls = []
    loader = make_loader(list(range(10)), batch_size=2, shuffle=False)
    epochs = EpochLoader(loader, max_batches=3, on_epoch_end=lambda: calls.append(1))
    assert len(epochs) == 3 and epochs.sampler is loader.sampler
    assert [b.tolist() for b in epochs] == [[0, 1], [2, 3], [4, 5]] and calls == [1]
    assert len(list(EpochLoader(loader))) == 5


def _worker(rank, world, init_file, results):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        model = UNet(3, 3, base=4, depth=2)
        images, masks = synthetic_segmentation(5, 32, seed=3)
        val = ArrayDataset(images, masks)
        with torch.no_grad():  # a model with non-default BatchNorm statistics
            for module in model.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_mean.uniform_(-0.1, 0.1)
        shard = evaluate(model, make_loader(val, 2, shuffle=False, sampler=ShardSampler(5, rank, world)), 3)
        padded = evaluate(model, make_loader(val, 2, shuffle=False, sampler=DistributedSampler(val, world, rank, shuffle=False)), 3)
        model.inc.net[1].running_mean.add_(rank)  # the copies drift apart, as BatchNorm buffers do
        drifted = replicas_identical(model)
        sync_buffers(model)
        synced = replicas_identical(model)
        results[rank] = (shard.confusion.matrix.tolist(), padded.confusion.matrix.tolist(), drifted, synced)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_processes_evaluate_each_image_once_and_sync_buffers(tmp_path):
    manager = mp.get_context("spawn").Manager()
    results = manager.dict()
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), results), nprocs=2, join=True)
    torch.manual_seed(0)
    model = UNet(3, 3, base=4, depth=2)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
    images, masks = synthetic_segmentation(5, 32, seed=3)
    single = evaluate(model, make_loader(ArrayDataset(images, masks), 5, shuffle=False), 3).confusion.matrix
    for rank in (0, 1):
        shard, padded, drifted, synced = results[rank]
        assert torch.equal(torch.tensor(shard), single)  # ShardSampler: exactly the single-process counts
        assert torch.tensor(padded).sum() == 6 * 32 * 32  # DistributedSampler: one image counted twice
        assert drifted is False and synced is True


def _uneven_worker(rank, init_file, results):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        model = UNet(3, 3, base=4, depth=2)
        batch = (torch.rand(2, 3, 16, 16), torch.randint(0, 3, (2, 16, 16)))
        loader = [batch] if rank == 0 else []  # e.g. one validation image for two processes
        result = evaluate(model, loader, 3, loss_fn=CombinedLoss())
        results[rank] = (result.loss, result.parts, result.confusion.matrix.tolist())
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_a_process_without_batches_still_reduces_the_same_keys(tmp_path):
    """Regression: each process packed only the loss keys it had seen, so all_reduce got tensors
    of different lengths (a crash on one rank, a wrong mean on the other)."""
    manager = mp.get_context("spawn").Manager()
    results = manager.dict()
    mp.spawn(_uneven_worker, args=(str(tmp_path / "init"), results), nprocs=2, join=True)
    torch.manual_seed(0)
    model = UNet(3, 3, base=4, depth=2)
    batch = (torch.rand(2, 3, 16, 16), torch.randint(0, 3, (2, 16, 16)))
    single = evaluate(model, [batch], 3, loss_fn=CombinedLoss())
    for rank in (0, 1):
        loss, parts, matrix = results[rank]
        assert loss == pytest.approx(single.loss) and parts == pytest.approx(single.parts)
        assert torch.equal(torch.tensor(matrix), single.confusion.matrix)


@pytest.mark.slow
def test_torchrun_two_processes_train(tmp_path):
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "unet_helpers", "train",
        "--out", str(out), "--epochs", "2", "--synthetic-train", "24", "--synthetic-val", "5", "--size", "32",
        "--base", "4", "--depth", "3", "--steps-per-epoch", "2", "--batch-size", "4", "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("parameters and buffers identical on all 2 processes") == 1  # checked on all, printed once
    assert done.stdout.count("done: 2 epochs") == 1
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2]  # one line per epoch: only rank 0 writes
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "last.pt", "metrics.jsonl"]
    saved = load_checkpoint(out / "last.pt")
    assert saved["epoch"] == 2 and saved["extra"]["class_names"] == ["background", "circle", "square"]
    images, masks = synthetic_segmentation(5, 32, seed=1)  # the validation set train builds with --seed 0
    single = evaluate(saved["model"], make_loader(ArrayDataset(images, masks), 5, shuffle=False), 3)
    assert single.confusion.matrix.sum() == 5 * 32 * 32
    assert single.iou == pytest.approx(tuple(lines[-1]["val"]["iou"]), abs=1e-9)
    assert single.miou == pytest.approx(lines[-1]["val"]["miou"], abs=1e-9)
