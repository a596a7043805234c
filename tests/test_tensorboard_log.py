"""TensorBoardLog: the event file holds what the epoch records say (read back with TensorBoard's reader)."""
import math

import pytest
import torch

pytest.importorskip("tensorboard", reason="TensorBoardLog needs tensorboard (requirements.txt)")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from unet_helpers import ArrayDataset, CombinedLoss, UNet, synthetic_segmentation  # noqa: E402
from unet_helpers.loaders import make_loader  # noqa: E402
from unet_helpers.tensorboard_log import TensorBoardLog  # noqa: E402
from unet_helpers.train import fit  # noqa: E402


def read_events(log_dir):
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def test_fit_writes_every_epoch_record(tmp_path):
    torch.manual_seed(0)
    images, masks = synthetic_segmentation(12, size=32, seed=0)
    train = make_loader(ArrayDataset(images[:8], masks[:8]), batch_size=4, shuffle=True, seed=0)
    val = make_loader(ArrayDataset(images[8:], masks[8:]), batch_size=4, shuffle=False)
    model = UNet(3, 3, base=4, depth=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    log = TensorBoardLog(tmp_path / "tb", class_names=["background", "circle", "square"], preview_images=2)
    history = fit(model, train, val, CombinedLoss(), optimizer, epochs=2, callbacks=[log], progress=False)
    log.close()
    events = read_events(tmp_path / "tb")
    tags = set(events.Tags()["scalars"])
    assert {"loss/train", "loss/val", "val/miou", "lr", "iou/background", "iou/circle", "iou/square", "dice/square"} <= tags
    for name, k in (("background", 0), ("circle", 1), ("square", 2)):
        points = events.Scalars(f"iou/{name}")
        expected = [(r.epoch, r.val.iou[k]) for r in history if not math.isnan(r.val.iou[k])]
        assert [p.step for p in points] == [e for e, _ in expected]
        assert [p.value for p in points] == pytest.approx([v for _, v in expected], rel=1e-6)
    assert [p.value for p in events.Scalars("val/miou")] == pytest.approx([r.val.miou for r in history], rel=1e-6)
    assert [p.value for p in events.Scalars("loss/train")] == pytest.approx([r.train.loss for r in history], rel=1e-6)
    previews = events.Images("preview")
    assert [p.step for p in previews] == [1, 2]
    assert (previews[0].height, previews[0].width) == (2 * 32, 3 * 32)


def test_undefined_score_is_not_written_as_zero(tmp_path):
    from unet_helpers.metrics import ConfusionMatrix
    from unet_helpers.records import EpochRecord, Evaluation, TrainSummary

    confusion = ConfusionMatrix(3)
    confusion.update(torch.zeros(1, 4, 4, dtype=torch.long), torch.tensor([[[0, 0, 1, 1]] * 4]))
    record = EpochRecord(1, TrainSummary(0.5), Evaluation.from_counts(confusion, loss=0.4), lr=1e-3, seconds=1.0)
    assert math.isnan(record.val.iou[2])  # class 2 is in neither mask
    log = TensorBoardLog(tmp_path / "tb")
    log([record], model=None)
    log.close()
    events = read_events(tmp_path / "tb")
    tags = set(events.Tags()["scalars"])
    assert "iou/class 0" in tags and "iou/class 1" in tags and "iou/class 2" not in tags


def test_refuses_class_names_that_do_not_match(tmp_path):
    from unet_helpers.metrics import ConfusionMatrix
    from unet_helpers.records import EpochRecord, Evaluation, TrainSummary

    confusion = ConfusionMatrix(2)
    confusion.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 2, dtype=torch.long))
    record = EpochRecord(1, TrainSummary(0.5), Evaluation.from_counts(confusion), lr=1e-3, seconds=1.0)
    log = TensorBoardLog(tmp_path / "tb", class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="3 names but num_classes=2"):
        log([record], model=None)
    with pytest.raises(TypeError, match="preview_images must be an int"):
        TensorBoardLog(tmp_path / "tb2", preview_images=1.5)


def test_train_command_writes_the_event_file(tmp_path, capsys):
    import json

    from unet_helpers.cli import main

    board = tmp_path / "tb"
    argv = ["train", "--synthetic-train", "16", "--synthetic-val", "4", "--size", "32", "--steps-per-epoch", "2",
            "--base", "4", "--depth", "2", "--quiet", "--epochs", "2", "--out", str(tmp_path / "run"), "--tensorboard", str(board)]
    assert main(argv) == 0
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    events = read_events(board)
    assert [p.value for p in events.Scalars("val/miou")] == pytest.approx([line["val"]["miou"] for line in lines], rel=1e-6)
    assert [p.value for p in events.Scalars("iou/square")] == pytest.approx([line["val"]["iou"][2] for line in lines], rel=1e-6)
    assert [p.step for p in events.Images("preview")] == [1, 2]
    (tmp_path / "file").write_text("x")
    capsys.readouterr()
    assert main([*argv[:-1], str(tmp_path / "file"), "--overwrite"]) == 1
    assert "is a file; give a folder" in capsys.readouterr().err
