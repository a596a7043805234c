"""``train``'s defaults for small real sets: steps per epoch, the warm-up + cosine schedule,
``--time-budget``, ``--elastic``, whole-image (and tiled) validation, and the refusals.

Tiny models on synthetic folders in ``tmp_path``; references are counted by hand (draws, pixels)
or computed in closed form (the schedule's factors).
"""
import argparse
import itertools
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from unet_helpers import UNet
from unet_helpers.checkpoint import load_checkpoint
from unet_helpers.cli import main
from unet_helpers.loaders import RepeatedShuffle
from unet_helpers.schedules import WarmupCosine
from unet_helpers.cli.train import (FOLDER_STEPS, TiledValidation, add_train_arguments,
                                    build_datasets)

TINY = ["--base", "4", "--depth", "2", "--quiet"]


def write_folder(root, sizes, seed=0):
    """Images ``00``, ``01``, ... of the given ``(H, W)`` sizes with 0/255 masks (a bright square = 255)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for index, size in enumerate(sizes):
        image = rng.integers(0, 120, size, dtype=np.uint8)
        mask = np.zeros(size, np.uint8)
        top, left = rng.integers(0, size[0] // 2), rng.integers(0, size[1] // 2)
        mask[top:top + size[0] // 3, left:left + size[1] // 3] = 255
        image[mask == 255] += 120
        Image.fromarray(image).save(root / "images" / f"{index:02d}.png")
        Image.fromarray(mask).save(root / "masks" / f"{index:02d}.png")
    return root


def run_error(capsys, argv):
    """Run a command that must fail; return its one-line message."""
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def scheduler_state(path):
    """The scheduler's ``state_dict`` as saved in a checkpoint (plain tensors and numbers: ``weights_only``)."""
    return torch.load(path, map_location="cpu", weights_only=True)["scheduler_state"]


def records(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def folder(tmp_path):
    """Six 40x48 training images and one 40x48 validation image (``05``)."""
    return write_folder(tmp_path / "data", [(40, 48)] * 6)


def folder_args(folder, *extra):
    return ["train", "--data", str(folder), "--mask-values", "0:0,255:1", "--val-names", "05", "--crop", "32",
            "--batch-size", "2", *TINY, *extra]


def test_folder_epoch_is_at_least_folder_steps(folder, tmp_path):
    out = tmp_path / "run"
    assert main([*folder_args(folder, "--epochs", "1"), "--out", str(out)]) == 0
    saved = load_checkpoint(out / "last.pt")
    # 5 training images, batches of 2: one pass is 2 batches (the last image alone is dropped)
    assert saved["extra"]["total_steps"] == FOLDER_STEPS
    assert scheduler_state(out / "last.pt")["last_epoch"] == FOLDER_STEPS  # optimisation steps actually taken


def test_explicit_steps_per_epoch_cuts_or_repeats(folder, tmp_path):
    for steps in (1, 7):
        out = tmp_path / f"run{steps}"
        assert main([*folder_args(folder, "--epochs", "1", "--steps-per-epoch", str(steps)), "--out", str(out)]) == 0
        assert scheduler_state(out / "last.pt")["last_epoch"] == steps


def test_synthetic_epoch_stays_one_pass(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--synthetic-train", "16", "--synthetic-val", "4", "--size", "32", "--epochs", "1", *TINY,
                 "--out", str(out)]) == 0
    saved = load_checkpoint(out / "last.pt")
    assert saved["extra"]["total_steps"] == 2  # 16 images / batch 8
    assert scheduler_state(out / "last.pt")["total_steps"] == 2  # still torch's OneCycleLR by default


def test_repeated_shuffle_draws_every_image_equally_often():
    sampler = RepeatedShuffle(5, 23, seed=3)
    sampler.set_epoch(1)
    draws = list(sampler)
    assert len(draws) == len(sampler) == 23
    counts = np.bincount(draws, minlength=5)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 23
    assert list(sampler) == draws  # a function of (seed, epoch)
    sampler.set_epoch(2)
    assert list(sampler) != draws
    shards = [RepeatedShuffle(5, 6, seed=3, rank=r, world_size=2) for r in (0, 1)]
    for shard in shards:
        shard.set_epoch(1)
    whole = RepeatedShuffle(5, 12, seed=3)
    whole.set_epoch(1)
    dealt = list(whole)
    assert list(shards[0]) == dealt[0::2] and list(shards[1]) == dealt[1::2]


def test_warmup_cosine_rises_to_its_peak_and_never_exceeds_it():
    schedule = WarmupCosine(warmup_steps=4, total_steps=20)
    factors = [schedule(t) for t in range(21)]
    assert factors[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])  # linear warm-up
    assert max(factors) == pytest.approx(1.0) and all(f <= 1.0 for f in factors)
    after = factors[4:]
    assert all(a >= b for a, b in itertools.pairwise(after))  # decays monotonically
    t = 12  # halfway through the decay: (1 + cos(pi / 2)) / 2
    assert schedule(t) == pytest.approx(0.5 * (1 + math.cos(math.pi * (t - 4) / 16)))
    assert factors[20] == pytest.approx(0.0, abs=1e-12)
    assert WarmupCosine(4, None)(10) == 1.0  # total unknown yet (time budget): stay at the peak


def test_cosine_run_learning_rates_warm_up_and_stay_below_the_peak(folder, tmp_path):
    out = tmp_path / "run"
    argv = folder_args(folder, "--epochs", "4", "--steps-per-epoch", "3", "--warmup-steps", "5", "--lr", "2e-3")
    assert main([*argv, "--out", str(out)]) == 0
    lrs = [line["lr"] for line in records(out)]  # the rate at the first step of each epoch: steps 0, 3, 6, 9
    # warm-up is cut to the epoch (3 steps); decay over the remaining 9 steps
    expected = [2e-3 * WarmupCosine(3, 12)(step) for step in (0, 3, 6, 9)]
    assert lrs == pytest.approx(expected, rel=1e-9)
    assert lrs[0] < lrs[1] and all(lr <= 2e-3 * (1 + 1e-12) for lr in lrs)
    assert scheduler_state(out / "last.pt")["_last_lr"] == pytest.approx([0.0], abs=1e-15)


class OneSecondEpochs:
    """Stands in for ``time`` in ``unet_helpers.train``: every ``perf_counter`` call is one second later."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 1.0
        return self.now


def test_time_budget_plans_epochs_and_ends_the_decay(folder, tmp_path, capsys, monkeypatch):
    import unet_helpers.train as library_train

    monkeypatch.setattr(library_train, "time", OneSecondEpochs())  # fit reads the clock at the start and end of an epoch
    out = tmp_path / "run"
    assert main([*folder_args(folder, "--time-budget", "0.1", "--steps-per-epoch", "3"), "--out", str(out)]) == 0
    lines = records(out)
    assert [line["seconds"] for line in lines] == [1.0] * 6  # floor(6 s / 1 s) epochs
    saved = load_checkpoint(out / "last.pt")
    assert saved["extra"]["epochs_planned"] == 6 and saved["extra"]["total_steps"] == 18
    assert scheduler_state(out / "last.pt")["lr_lambdas"] == [{"warmup_steps": 3, "total_steps": 18}]
    assert scheduler_state(out / "last.pt")["_last_lr"] == pytest.approx([0.0], abs=1e-15)  # the decay ended with the run
    assert load_checkpoint(out / "best.pt")["extra"]["epochs_planned"] == 6  # from any epoch, the first included
    short = tmp_path / "short"
    assert main([*folder_args(folder, "--time-budget", "0.001", "--steps-per-epoch", "3"), "--out", str(short)]) == 0
    assert len(records(short)) == 1  # 0.06 s: less than one epoch, still one epoch
    assert load_checkpoint(short / "last.pt")["extra"]["epochs_planned"] == 1
    # resuming the budget run needs the epochs the budget chose
    capsys.readouterr()
    assert main([*folder_args(folder, "--epochs", "6", "--steps-per-epoch", "3"), "--out", str(out),
                 "--resume", str(out / "last.pt")]) == 0
    assert "nothing to do" in capsys.readouterr().out


def parsed(argv):
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    return parser.parse_args(argv)


def test_elastic_changes_the_training_batches(folder):
    common = ["--data", str(folder), "--mask-values", "0:0,255:1", "--val-names", "05", "--crop", "32", "--no-augment"]
    samples = {}
    for name, extra in (("plain", []), ("plain again", []), ("elastic", ["--elastic"])):
        train, _val, _info = build_datasets(parsed([*common, *extra]))
        torch.manual_seed(0)  # the same crop positions for every pipeline
        samples[name] = [train[i] for i in range(len(train))]
    for (image, mask), (again, mask_again), (warped, warped_mask) in zip(samples["plain"], samples["plain again"], samples["elastic"]):
        assert torch.equal(image, again) and torch.equal(mask, mask_again)  # so a difference is the deformation
        assert warped.shape == image.shape and warped_mask.shape == mask.shape
        assert set(warped_mask.unique().tolist()) <= {0, 1}  # nearest-neighbour labels stay class ids
    assert sum(not torch.allclose(w[0], p[0]) for w, p in zip(samples["elastic"], samples["plain"])) == len(samples["plain"])
    assert any(not torch.equal(w[1], p[1]) for w, p in zip(samples["elastic"], samples["plain"]))


def confusion_total(out):
    matrix = np.array(records(out)[-1]["val"]["confusion"]["matrix"])
    return int(matrix.sum())


def test_whole_image_validation_counts_every_pixel(tmp_path):
    data = write_folder(tmp_path / "data", [(40, 48)] * 4 + [(40, 48), (36, 44)])  # validation: 04 and 05, two sizes
    argv = ["train", "--data", str(data), "--mask-values", "0:0,255:1", "--val-names", "04,05", "--crop", "32",
            "--batch-size", "2", "--epochs", "1", "--steps-per-epoch", "2", *TINY]
    assert main([*argv, "--out", str(tmp_path / "whole")]) == 0
    assert confusion_total(tmp_path / "whole") == 40 * 48 + 36 * 44  # the default: whole images, no centre crop
    assert main([*argv, "--val-tile", "16", "--out", str(tmp_path / "tiled")]) == 0
    assert confusion_total(tmp_path / "tiled") == 40 * 48 + 36 * 44  # by tiles above --val-tile, still every pixel
    assert main([*argv, "--val-crop", "24", "--out", str(tmp_path / "crop")]) == 0
    assert confusion_total(tmp_path / "crop") == 2 * 24 * 24  # --val-crop: centre crops, as before


def test_tiled_validation_agrees_with_predict_tiled_and_trains_whole():
    from unet_helpers.inference import predict_tiled

    torch.manual_seed(0)
    model = UNet(1, 3, base=4, depth=2)
    wrapper = TiledValidation(model, tile=16)
    images = torch.rand(2, 1, 40, 36)
    wrapper.train()
    assert torch.equal(wrapper(images), model(images))  # training: the plain forward
    wrapper.eval()
    with torch.inference_mode():
        log_probs = wrapper(images)
    assert log_probs.shape == (2, 3, 40, 36) and not wrapper.training
    for image, scores in zip(images, log_probs):
        ids, probs = predict_tiled(model, image, 16, return_probs=True, channels_last=False)
        assert torch.equal(scores.argmax(0), ids)
        assert torch.allclose(scores.exp(), probs, atol=1e-6)
    with torch.inference_mode():
        small = TiledValidation(model, tile=64).eval()(images)
    assert torch.allclose(small, model.eval()(images))  # below the tile size: the whole image in one pass


@pytest.mark.parametrize("extra, message", [
    (["--time-budget", "1", "--epochs", "3"], "--time-budget 1 plans the number of epochs itself; drop --epochs 3"),
    (["--time-budget", "1", "--schedule", "onecycle"], "--time-budget needs --schedule cosine or constant"),
    (["--time-budget", "0"], "argument --time-budget: must be > 0; got 0"),
    (["--time-budget", "ten"], "argument --time-budget: expected a number; got 'ten'"),
    (["--steps-per-epoch", "0"], "argument --steps-per-epoch: must be >= 1; got 0"),
    (["--warmup-steps", "-1"], "argument --warmup-steps: must be >= 0; got -1"),
    (["--val-tile", "0"], "argument --val-tile: must be >= 1; got 0"),
    (["--schedule", "linear"], "argument --schedule: invalid choice: 'linear'"),
])
def test_bad_values_give_one_error_line(folder, tmp_path, capsys, extra, message):
    out = tmp_path / "run"
    err = run_error(capsys, [*folder_args(folder, *extra), "--out", str(out)])
    assert message in err
    assert not out.exists()  # nothing written


def test_time_budget_refuses_resume(folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*folder_args(folder, "--epochs", "1", "--steps-per-epoch", "1"), "--out", str(out)]) == 0
    err = run_error(capsys, [*folder_args(folder, "--time-budget", "1"), "--out", str(out), "--resume", str(out / "last.pt")])
    assert "--time-budget cannot continue a run" in err and "resume with --epochs E" in err


@pytest.mark.slow
def test_torchrun_folder_defaults_and_time_budget(folder, tmp_path):
    """Two processes: the repeated shuffle deals out disjoint draws, process 0's budget plan reaches both."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "run"
    argv = [*folder_args(folder, "--time-budget", "0.05", "--steps-per-epoch", "3"), "--out", str(out)]
    argv[argv.index("05")] = "04,05"  # each process needs a validation image
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "unet_helpers", *argv]
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("parameters and buffers identical on all 2 processes") == 1
    lines = records(out)
    saved = load_checkpoint(out / "last.pt")
    assert saved["extra"]["epochs_planned"] == len(lines) >= 1 and saved["extra"]["total_steps"] == 3 * len(lines)
    assert scheduler_state(out / "last.pt")["last_epoch"] == 3 * len(lines)
