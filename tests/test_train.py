"""The training loop: modes, accumulated metrics, callbacks, schedulers, reproducibility, resume."""
import math

import pytest
import torch
import torch.nn as nn

from unet_helpers import ArrayDataset, CombinedLoss, ConfusionMatrix, UNet, seed_everything, synthetic_segmentation
from unet_helpers.checkpoint import load_checkpoint, save_checkpoint
from unet_helpers.inference import predict
from unet_helpers.loaders import make_loader
from unet_helpers.records import EpochRecord, Evaluation, TrainSummary
from unet_helpers.train import evaluate, fit, train_one_epoch


def small_data(n=24, size=32, seed=0):
    images, masks = synthetic_segmentation(n, size=size, seed=seed)
    return ArrayDataset(images, masks)


def small_setup(seed=0, shuffle=True):
    seed_everything(seed)
    train = make_loader(small_data(24, seed=1), batch_size=4, shuffle=shuffle, seed=seed)
    val = make_loader(small_data(10, seed=2), batch_size=4, shuffle=False)
    model = UNet(3, 3, base=4, depth=3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    return model, train, val, optimizer


def test_fit_history_records_and_learning():
    model, train, val, optimizer = small_setup()
    history = fit(model, train, val, CombinedLoss(), optimizer, epochs=4, progress=False)
    assert [r.epoch for r in history] == [1, 2, 3, 4]
    assert all(isinstance(r, EpochRecord) and isinstance(r.train, TrainSummary) and isinstance(r.val, Evaluation)
               for r in history)
    assert set(history[0].train.parts) == {"ce", "dice"} and len(history[0].val.iou) == 3
    assert set(history[0].val.parts) == {"ce", "dice"} and math.isfinite(history[0].val.loss)
    assert history[-1].train.loss < history[0].train.loss
    assert history[-1].miou == history[-1].val.miou
    assert model.training  # fit leaves the model in training mode, as it found it


def test_epoch_record_json_round_trip_has_one_encoding_of_undefined():
    model, train, val, optimizer = small_setup()
    history = fit(model, train, val, CombinedLoss(), optimizer, epochs=1, progress=False)
    record = history[0]
    assert isinstance(record.val.iou, tuple)
    assert record.val.preview is None  # nobody asked for one
    data = record.to_json()
    assert set(data) == {"epoch", "train", "val", "lr", "seconds"}
    back = EpochRecord.from_json(data)
    assert back.epoch == record.epoch and back.val.iou == pytest.approx(record.val.iou, nan_ok=True)
    assert torch.equal(back.val.confusion.matrix, record.val.confusion.matrix)
    # An absent class: NaN in memory, null in JSON, NaN again after reading back.
    absent = Evaluation.from_counts(ConfusionMatrix(3))
    assert math.isnan(absent.iou[2]) and math.isnan(absent.loss)
    assert absent.to_json()["iou"] == [None, None, None] and absent.to_json()["loss"] is None
    assert math.isnan(Evaluation.from_json(absent.to_json()).miou)
    without_val = EpochRecord(1, TrainSummary(0.5), None, 1e-3, 2.0)
    assert math.isnan(without_val.miou) and without_val.to_json()["val"] is None


def test_evaluate_metrics_come_from_accumulated_counts():
    model, train, val, optimizer = small_setup()
    fit(model, train, val, CombinedLoss(), optimizer, epochs=2, progress=False)
    images = torch.stack([val.dataset[i][0] for i in range(len(val.dataset))])
    targets = torch.stack([val.dataset[i][1] for i in range(len(val.dataset))])
    reference = ConfusionMatrix(3)
    reference.update(predict(model, images), targets)  # whole set at once, independent path
    for batch_size in (1, 3, 10):
        result = evaluate(model, make_loader(val.dataset, batch_size, shuffle=False), 3)
        assert torch.equal(result.confusion.matrix, reference.matrix)
        assert result.miou == pytest.approx(reference.miou())
        assert math.isnan(result.loss) and result.parts == {}  # no loss function given


def test_evaluate_uses_eval_mode_and_changes_nothing():
    model, train, val, _ = small_setup()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    evaluate(model, val, 3, loss_fn=CombinedLoss())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm running stats untouched
    assert model.training  # mode restored
    model.eval()
    evaluate(model, val, 3)
    assert not model.training


def test_train_one_epoch_switches_to_train_mode():
    model, train, _, optimizer = small_setup()
    model.eval()
    bn = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    running = bn.running_mean.clone()
    train_one_epoch(model, train, CombinedLoss(), optimizer)
    assert model.training and not torch.equal(bn.running_mean, running)


def test_callbacks_get_history_and_model():
    model, train, val, optimizer = small_setup()
    calls = []
    fit(model, train, val, CombinedLoss(), optimizer, epochs=3, progress=False,
        callbacks=[lambda h, m: calls.append((len(h), m, h[-1].val.preview))])
    assert [c[0] for c in calls] == [1, 2, 3] and all(c[1] is model for c in calls)
    assert all(c[2] is None for c in calls)  # no callback asked for a preview: none is kept


class PreviewWanted:
    preview_images = 6  # more than one validation batch (4): taken from the first two batches

    def __init__(self):
        self.previews = []

    def __call__(self, history, model):
        self.previews.append(history[-1].val.preview)


def test_a_callback_asking_for_a_preview_gets_the_predictions_evaluate_made():
    model, train, val, optimizer = small_setup()
    wanted = PreviewWanted()
    forwards = []
    hook = model.register_forward_hook(lambda m, i, o: forwards.append(m.training))
    history = fit(model, train, val, CombinedLoss(), optimizer, epochs=2, progress=False, callbacks=[wanted])
    hook.remove()
    images = torch.stack([val.dataset[i][0] for i in range(6)])
    targets = torch.stack([val.dataset[i][1] for i in range(6)])
    for preview in wanted.previews:
        assert preview.images.shape == (6, 3, 32, 32) and preview.preds.shape == (6, 32, 32)
        assert torch.equal(preview.images, images) and torch.equal(preview.targets, targets)
    assert torch.equal(wanted.previews[-1].preds, predict(model, images))  # the final model's predictions
    evals_per_epoch = len(val)  # 3 validation batches: no extra forward pass for the preview
    assert forwards.count(False) == 2 * evals_per_epoch
    assert history[-1].val.preview is wanted.previews[-1]


def test_scheduler_per_epoch_and_plateau():
    model, train, val, optimizer = small_setup()
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = fit(model, train, val, CombinedLoss(), optimizer, 2, scheduler=scheduler, progress=False)
    assert [r.lr for r in history] == pytest.approx([1e-2, 5e-3])  # the rate each epoch trained with
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=0, factor=0.1, threshold=10.0)
    history = fit(model, train, val, CombinedLoss(), optimizer, 2, scheduler=plateau, progress=False, history=history)
    assert [r.epoch for r in history] == [1, 2, 3, 4]
    assert history[-1].lr < history[1].lr


def test_seeded_training_is_reproducible_on_cpu():
    runs = []
    for _ in range(2):
        model, train, val, optimizer = small_setup(seed=3)
        history = fit(model, train, val, CombinedLoss(), optimizer, 2, progress=False)
        runs.append((model.state_dict(), [{**r.to_json(), "seconds": None} for r in history]))
    (w1, h1), (w2, h2) = runs
    assert h1 == h2
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


def test_resume_from_checkpoint_equals_uninterrupted_training(tmp_path):
    model, train, val, optimizer = small_setup(seed=4, shuffle=True)
    straight = fit(model, train, val, CombinedLoss(), optimizer, 3, progress=False)
    straight_weights = model.state_dict()

    model, train, val, optimizer = small_setup(seed=4, shuffle=True)
    history = fit(model, train, val, CombinedLoss(), optimizer, 2, progress=False)
    train = make_loader(train.dataset, batch_size=4, shuffle=True, seed=4)  # a new process: a new loader
    save_checkpoint(tmp_path / "ckpt.pt", model, optimizer, epoch=2, history=history)
    fresh = UNet(3, 3, base=4, depth=3)
    fresh_optimizer = torch.optim.Adam(fresh.parameters(), lr=1e-2)
    state = load_checkpoint(tmp_path / "ckpt.pt", fresh, fresh_optimizer)
    resumed = fit(fresh, train, val, CombinedLoss(), fresh_optimizer, 1, progress=False, history=state["history"])
    assert [r.epoch for r in resumed] == [1, 2, 3]
    assert resumed[-1].train.loss == pytest.approx(straight[-1].train.loss, rel=1e-5)
    assert resumed[0].to_json() == history[0].to_json()  # the saved records come back unchanged
    assert all(torch.allclose(straight_weights[k].float(), fresh.state_dict()[k].float(), atol=1e-5) for k in straight_weights)


def test_pixel_weight_triples_reach_the_loss():
    seen = []

    def loss_fn(logits, target, pixel_weights=None):
        seen.append(pixel_weights)
        return nn.functional.cross_entropy(logits, target)

    base = small_data(8)
    triples = [(x, y, torch.full(y.shape, 2.0)) for x, y in base]
    model = UNet(3, 3, base=4, depth=3)
    fit(model, make_loader(triples, 4), None, loss_fn, torch.optim.SGD(model.parameters(), lr=0.1), 1, progress=False)
    assert len(seen) == 2 and all(w is not None and torch.all(w == 2.0) for w in seen)


def test_border_weight_triples_work_with_the_package_losses():
    from unet_helpers.losses import combined_loss, pixel_cross_entropy

    base = small_data(8)
    triples = [(x, y, torch.rand(y.shape) + 0.5) for x, y in base]
    for loss_fn in (CombinedLoss(), combined_loss, pixel_cross_entropy):
        model = UNet(3, 3, base=4, depth=3)
        history = fit(model, make_loader(triples, 4), None, loss_fn, torch.optim.SGD(model.parameters(), lr=0.1),
                      1, progress=False)
        assert math.isfinite(history[0].train.loss)


def test_nan_loss_and_bad_arguments_are_clear():
    model, train, val, optimizer = small_setup()
    with pytest.raises(FloatingPointError, match=r"loss became nan.*lower the learning rate"):
        train_one_epoch(model, train, lambda logits, target: logits.sum() * math.nan, optimizer)
    with pytest.raises(ValueError, match=r"epochs must be an int >= 0; got 2.5"):
        fit(model, train, val, CombinedLoss(), optimizer, 2.5, progress=False)
    with pytest.raises(ValueError, match=r"each batch must be \(images, targets\)"):
        train_one_epoch(model, [torch.zeros(2, 3, 16, 16)], CombinedLoss(), optimizer)
    with pytest.raises(ValueError, match=r"cannot tell the number of classes.*num_classes=K"):
        evaluate(nn.Conv2d(3, 2, 1), val)


def test_shuffle_depends_only_on_seed_and_epoch():
    data = list(range(20))
    orders = [list(make_loader(data, batch_size=20, seed=1))[0].tolist() for _ in range(2)]
    assert orders[0] == orders[1]  # two loaders, same seed: same first epoch
    loader = make_loader(data, batch_size=20, seed=1)
    first, second = (list(loader)[0].tolist() for _ in range(2))
    assert first == orders[0] and second != first and sorted(second) == data  # a hand loop moves on
    loader.sampler.set_epoch(1)
    assert list(loader)[0].tolist() == second  # set_epoch pins the order of an epoch
    assert list(make_loader(data, batch_size=20, seed=2))[0].tolist() != orders[0]
    assert list(make_loader(data, batch_size=20, shuffle=False))[0].tolist() == data


def test_make_loader_drops_a_last_batch_of_one():
    assert make_loader(small_data(9), batch_size=4).drop_last is True
    assert make_loader(small_data(8), batch_size=4).drop_last is False
    assert make_loader(small_data(9), batch_size=4, shuffle=False).drop_last is False
    sampler = torch.utils.data.SubsetRandomSampler(range(5))  # the sampler's length decides
    assert make_loader(small_data(9), batch_size=4, sampler=sampler).drop_last is True


def test_fit_in_channels_last_layout_matches_the_default_layout():
    """Same start, same batches, two layouts: the same step up to float rounding, and a checkpoint
    that loads into a default-layout model. (SGD, one batch: Adam's first step is lr * sign(grad),
    which float rounding can flip for gradients near zero, so it would not compare layouts.)"""
    runs = {}
    for channels_last in (False, True):
        seed_everything(5)
        model = UNet(3, 3, base=4, depth=3)
        train = make_loader(small_data(8, seed=1), batch_size=8, shuffle=False)
        val = make_loader(small_data(6, seed=2), batch_size=3, shuffle=False)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        history = fit(model, train, val, CombinedLoss(), optimizer, 1, progress=False, channels_last=channels_last)
        runs[channels_last] = (model, history[0])
    (plain, h_plain), (fast, h_fast) = runs[False], runs[True]
    first_conv = next(m for m in fast.modules() if isinstance(m, nn.Conv2d)).weight
    assert first_conv.is_contiguous(memory_format=torch.channels_last)
    assert not next(m for m in plain.modules() if isinstance(m, nn.Conv2d)).weight.is_contiguous(memory_format=torch.channels_last)
    for name, value in plain.state_dict().items():
        assert torch.allclose(value.float(), fast.state_dict()[name].float(), atol=1e-5), name
    assert math.isclose(h_plain.train.loss, h_fast.train.loss, rel_tol=1e-5)
    assert math.isclose(h_plain.val.loss, h_fast.val.loss, rel_tol=1e-4)
    x = torch.randn(2, 3, 32, 32)
    reloaded = UNet(3, 3, base=4, depth=3).eval()
    reloaded.load_state_dict(fast.state_dict())  # into the default layout
    with torch.no_grad():
        assert torch.allclose(reloaded(x), fast.eval()(x), atol=1e-5)
