"""Checks of exercise 10: one optimisation step, and an evaluation pass.

References, written here for one batch the plain way (``unet_helpers.train.train_one_epoch`` and
``evaluate`` do the same steps over a loader, with AMP, clipping and progress bars around them;
``tests/test_checks_training.py`` checks that both agree): ``model.train(); optimizer.zero_grad();
loss = loss_fn(model(x), y); loss.backward(); optimizer.step()``, and ``model.eval()`` +
``torch.no_grad()`` with a ``ConfusionMatrix`` summed over every batch. A tiny conv -> BatchNorm ->
ReLU -> conv model makes train/eval mode visible.
"""
from __future__ import annotations

import copy
import numbers
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from ..metrics import ConfusionMatrix
from .compare import same
from .core import Property, PropertyFailed
from .isolation import call_learner, current_session
from .spec import ExerciseSpec
from .tools import generator

K = 3


def _model(seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, K, 1))


def _batch(n: int, seed: int, size: tuple[int, int] = (8, 8)) -> tuple[torch.Tensor, torch.Tensor]:
    gen = generator(600 + seed)
    return torch.randn(n, 3, *size, generator=gen), torch.randint(0, K, (n, *size), generator=gen)


def _loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, target)


def _setup(seed: int, lr: float = 0.1) -> tuple[nn.Module, torch.optim.Optimizer]:
    model = _model(seed)
    return model, torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)


def _reference_step(model: nn.Module, images: torch.Tensor, masks: torch.Tensor, optimizer: torch.optim.Optimizer,
                    loss_fn: Callable[..., torch.Tensor]) -> float:
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(images), masks)
    loss.backward()
    optimizer.step()
    return loss.item()


def _params(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])  # (P,)


def _buffers(model: nn.Module) -> torch.Tensor:
    """BatchNorm running statistics and batch counts, as one float64 vector."""
    return torch.cat([b.detach().double().reshape(-1) for b in model.buffers()])  # (B,)


def _run_both(fn: Callable[..., Any], seed: int, eval_first: bool = False, stale_grads: bool = False,
              steps: int = 1) -> dict[str, Any]:
    """Run the learner's step and the reference on two identical models; return what to compare."""
    mine, mine_opt = _setup(seed)
    ref = copy.deepcopy(mine)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    start = _params(mine)
    modes: list[bool] = []
    mine.register_forward_pre_hook(lambda m, _i: modes.append(m.training))
    if eval_first:
        mine.eval()
        ref.eval()
    if stale_grads:  # as if an earlier batch had run backward() without a step
        for p, q in zip(mine.parameters(), ref.parameters()):
            p.grad = torch.ones_like(p)
            q.grad = torch.ones_like(q)
    returned, expected = [], []
    for step in range(steps):
        images, masks = _batch(2 + step, seed * 10 + step)
        returned.append(call_learner(fn, mine, images, masks, mine_opt, _loss_fn))
        expected.append(_reference_step(ref, images, masks, ref_opt, _loss_fn))
    return dict(returned=returned, expected=expected, mine=mine, ref=ref, start=start, modes=modes)


def _compare_params(run: dict[str, Any], what: str) -> None:
    got, expected = _params(run["mine"]), _params(run["ref"])
    if same(got, expected, atol=1e-5):
        _compare_buffers(run, what)
        return
    if same(got, run["start"], atol=0.0, rtol=0.0):
        raise PropertyFailed(f"The parameters did not change ({what}).", "unchanged", "moved by one SGD step",
                             hint="optimizer.step() uses the gradients that loss.backward() just computed: order "
                                  "zero_grad(), forward, loss, backward(), step(); never zero_grad() between "
                                  "backward() and step().", name="optimizer.step() after loss.backward()")
    raise PropertyFailed(f"The parameters moved, but not by one SGD step on this batch ({what}); largest "
                         f"difference {float((got - expected).abs().max()):.3g}.", got[:4], expected[:4])


def _compare_buffers(run: dict[str, Any], what: str) -> None:
    got, expected = _buffers(run["mine"]), _buffers(run["ref"])
    if not same(got, expected, atol=1e-5):
        raise PropertyFailed(f"The parameters are right, but BatchNorm's running statistics differ from one step's "
                             f"({what}): your step runs the model forward more than once in train mode (every "
                             "train-mode forward updates them).", got[-4:], expected[-4:],
                             hint="One forward per step: `logits = model(images)`, and compute everything from "
                                  "`logits`; evaluate in eval mode under torch.no_grad().",
                             name="one forward pass per step (BatchNorm statistics)")


def _returns_float(fn: Callable[..., Any]) -> None:
    value = _run_both(fn, seed=1)["returned"][0]
    if isinstance(value, torch.Tensor) or not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise PropertyFailed("train_step should return the loss as a Python number.", value, "a float such as 1.0986",
                             hint="return loss.item(): a tensor would keep the whole graph of the step alive "
                                  "(memory grows every batch when you collect the losses in a list).")


def _loss_before_step(fn: Callable[..., Any]) -> None:
    run = _run_both(fn, seed=2)
    got, expected = float(run["returned"][0]), run["expected"][0]
    if abs(got - expected) > 1e-5:
        raise PropertyFailed("The returned value is not the loss of this batch before the step.", got, expected)


def _step_after_backward(fn: Callable[..., Any]) -> None:
    _compare_params(_run_both(fn, seed=3), "model in train mode, a fresh optimizer")


def _train_mode(fn: Callable[..., Any]) -> None:
    run = _run_both(fn, seed=4, eval_first=True)
    if run["modes"] and not all(run["modes"]):
        raise PropertyFailed("The forward pass ran with the model in eval mode (after an evaluation, say).",
                             "model.training = False during forward", "model.training = True")
    if not run["mine"].training:
        raise PropertyFailed("After your train_step the model is still in eval mode.", False, True)
    _compare_params(run, "model left in eval mode by an earlier evaluation")


def _zero_grad(fn: Callable[..., Any]) -> None:
    run = _run_both(fn, seed=5, stale_grads=True)
    got, expected = _params(run["mine"]), _params(run["ref"])
    if not same(got, expected, atol=1e-5):
        raise PropertyFailed("Gradients left from an earlier backward() were added to this batch's gradients.",
                             got[:4], expected[:4])
    _compare_params(_run_both(fn, seed=6, steps=3), "three steps in a row")


def _step_properties() -> list[Property]:
    model = "tiny conv -> BatchNorm -> ReLU -> conv model, SGD(lr=0.1, momentum=0.9), cross-entropy, batches (N, 3, 8, 8)"
    return [
        Property("runs one step and returns loss.item()", model, _returns_float),
        Property("returns the batch loss before the step", "the same, compared with the reference step", _loss_before_step),
        Property("optimizer.step() after loss.backward()", "parameters after one step vs the reference, fresh optimizer",
                 _step_after_backward),
        Property("model.train() at the start", "model left in eval mode before the step", _train_mode,
                 "Call `model.train()` first: BatchNorm must use the batch's statistics while training."),
        Property("optimizer.zero_grad() before backward", "stale gradients present before the step; then 3 steps in a row",
                 _zero_grad, "backward() adds to .grad; call optimizer.zero_grad() before it, every batch. "
                 "Zeroing after step() is not enough: the step must not assume .grad starts empty (an "
                 "evaluation, a gradient check or another loop may have left gradients behind)."),
    ]


TRAINING_STEP = ExerciseSpec(
    name="train_step",
    title="One training step",
    notebook="ex10_training_loop",
    task="Write `my_train_step(model, images, masks, optimizer, loss_fn) -> float`: one optimisation step on one "
         "batch; return the batch loss as a Python float.",
    properties=_step_properties,
    hints=(
        "Five lines: switch to training mode, clear old gradients, compute the loss, back-propagate, update.",
        "`model.train()`, `optimizer.zero_grad()`, `loss = loss_fn(model(images), masks)`, `loss.backward()`, "
        "`optimizer.step()`.",
        "Return `loss.item()`; `loss` itself keeps the graph alive.",
    ),
    defines=("my_train_step",),
    reference="unet_helpers/train.py: train_one_epoch",
    forbidden=("unet_helpers.train.train_one_epoch", "unet_helpers.train.fit"),
    next_steps="finish `my_evaluate` below; the last cell then trains a small U-Net on 8 images with your two "
               "functions (over-fitting a few images is the first test of any training loop).",
)

# ---------------------------------------------------------------------------------------------
# evaluate: model.eval(), no gradients, loss weighted by batch size, IoU from summed counts
# ---------------------------------------------------------------------------------------------


def _loader() -> DataLoader:
    images, masks = _batch(7, seed=7, size=(9, 7))
    # A generator of its own: iterating a DataLoader otherwise draws its base seed from the global generator.
    return DataLoader(TensorDataset(images, masks), batch_size=3, shuffle=False, generator=generator(0))  # batches 3, 3, 1


def _reference_evaluate(model: nn.Module, loader: DataLoader, loss_fn: Callable[..., torch.Tensor],
                        num_classes: int, per_batch: bool = False) -> tuple[float, float]:
    model.eval()
    cm, total, count, losses, mious = ConfusionMatrix(num_classes), 0.0, 0, [], []
    with torch.no_grad():
        for images, masks in loader:
            logits = model(images)
            loss = loss_fn(logits, masks).item()
            total, count = total + loss * len(images), count + len(images)
            cm.update(logits, masks)
            losses.append(loss)
            one = ConfusionMatrix(num_classes)
            one.update(logits, masks)
            mious.append(one.miou())
    if per_batch:
        return sum(losses) / len(losses), sum(mious) / len(mious)
    return total / count, cm.miou()


def _run_evaluate(fn: Callable[..., Any]) -> dict[str, Any]:
    mine = _model(8)
    ref = copy.deepcopy(mine)
    buffers = [b.clone() for b in mine.buffers()]
    seen: list[tuple[bool, bool]] = []
    mine.register_forward_pre_hook(lambda m, _i: seen.append((m.training, torch.is_grad_enabled())))
    result = call_learner(fn, mine, _loader(), _loss_fn, K)
    return dict(result=result, mine=mine, buffers=buffers, seen=seen, ref=ref)


def _ev_returns(fn: Callable[..., Any]) -> None:
    result = _run_evaluate(fn)["result"]
    ok = isinstance(result, (tuple, list)) and len(result) == 2 and all(
        isinstance(v, numbers.Real) and not isinstance(v, (bool, torch.Tensor)) for v in result)
    if not ok:
        raise PropertyFailed("evaluate should return (mean_loss, miou), two Python floats.", result, "(0.98, 0.41)",
                             hint="Use `loss.item()` for the loss and `cm.miou()` (already a float) for the mIoU.")


def _ev_eval_mode(fn: Callable[..., Any]) -> None:
    run = _run_evaluate(fn)
    if any(training for training, _ in run["seen"]):
        raise PropertyFailed("The model ran in training mode: BatchNorm used batch statistics and updated its running "
                             "averages.", "model.training = True during forward", "model.training = False",
                             hint="Call `model.eval()` at the start of evaluate.")
    for before, after in zip(run["buffers"], run["mine"].buffers()):
        if not torch.equal(before, after):
            raise PropertyFailed("BatchNorm's running statistics changed during evaluation.", after, before)


GRAD_LEFT_OFF = "with torch.no_grad(), not torch.set_grad_enabled(False)"


def _left_grad_off() -> bool:
    """The latest learner call found gradient tracking on and left it off."""
    session = current_session()
    states = session.last_states if session is not None else None
    return states is not None and states[0].grad_enabled and not states[1].grad_enabled


def _ev_no_grad(fn: Callable[..., Any]) -> None:
    seen = _run_evaluate(fn)["seen"]
    if any(grad for _, grad in seen) and _left_grad_off():
        raise PropertyFailed(
            "Your evaluate switches gradient tracking off for good (`torch.set_grad_enabled(False)`, never switched "
            "back), yet its forward passes ran with tracking on. Off for good is the real mistake: the next training "
            "step after an evaluation gets no gradients and its backward() fails.",
            "grad mode on during forward, off after evaluate returned", "off during forward, on again after",
            hint="Drop `torch.set_grad_enabled(...)` and put the loop in one `with torch.no_grad():` block: off "
                 "inside, switched back on when the block ends (even on an error).", name=GRAD_LEFT_OFF)
    if any(grad for _, grad in seen):
        raise PropertyFailed("Gradients were tracked during the forward passes.", "torch.is_grad_enabled() = True",
                             "False", hint="Wrap the loop in `with torch.no_grad():` (or `torch.inference_mode()`): "
                                           "no graph is kept, which saves memory and time.")


def _ev_caller_grad_off(fn: Callable[..., Any]) -> None:
    with torch.no_grad():  # a caller that evaluates inside its own no_grad block
        _run_evaluate(fn)
    session = current_session()
    states = session.last_states if session is not None else None
    if states is not None and not states[0].grad_enabled and states[1].grad_enabled:
        raise PropertyFailed(
            "Called with gradient tracking off (inside the caller's `with torch.no_grad():`), your evaluate returned "
            "with it on: `torch.set_grad_enabled(True)` at the end switches it on whatever the caller had.",
            "grad mode on after evaluate returned", "off, as the caller had it",
            hint="Use `with torch.no_grad():` around the loop instead of switching the mode by hand: it puts back "
                 "whatever mode the caller had.")


def _ev_values(fn: Callable[..., Any], index: int, name: str, message: str) -> None:
    run = _run_evaluate(fn)
    got = float(run["result"][index])
    expected = _reference_evaluate(run["ref"], _loader(), _loss_fn, K)[index]
    if abs(got - expected) <= 1e-5:
        return
    if abs(got - _reference_evaluate(copy.deepcopy(run["ref"]), _loader(), _loss_fn, K, per_batch=True)[index]) <= 1e-5:
        raise PropertyFailed(message, got, expected, name=name)
    raise PropertyFailed(f"{name}: your value differs from the reference.", got, expected)


def _ev_loss(fn: Callable[..., Any]) -> None:
    _ev_values(fn, 0, "mean loss over images (weighted by batch size)",
               "You average the batch losses; the last batch has 1 image, not 3. Sum loss * batch size, divide by images.")


def _ev_miou(fn: Callable[..., Any]) -> None:
    _ev_values(fn, 1, "mIoU from counts over the whole dataset",
               "You average per-batch mIoUs; update one ConfusionMatrix with every batch and take its miou() once.")


def _evaluate_properties() -> list[Property]:
    data = "tiny BatchNorm model, 7 images (9x7) in batches of 3, 3, 1, K=3"
    return [
        Property("returns (mean loss, mIoU) as two floats", data, _ev_returns),
        Property("model.eval(): BatchNorm statistics unchanged", data, _ev_eval_mode),
        Property("no gradients tracked (torch.no_grad())", data, _ev_no_grad),
        Property("mean loss over images (weighted by batch size)", data, _ev_loss),
        Property("mIoU from counts over the whole dataset", data, _ev_miou),
        Property("grad mode back as the caller had it", "the same, called inside the caller's torch.no_grad()",
                 _ev_caller_grad_off),
    ]


EVALUATION = ExerciseSpec(
    name="evaluate",
    title="Evaluation pass: eval mode, no gradients, dataset-level metrics",
    notebook="ex10_training_loop",
    task="Write `my_evaluate(model, loader, loss_fn, num_classes) -> (mean_loss, miou)`: the loss averaged over "
         "images and the mIoU of a `ConfusionMatrix` summed over every batch.",
    properties=_evaluate_properties,
    hints=(
        "Two switches before the loop: the model's mode, and gradient tracking.",
        "`model.eval()` then `with torch.no_grad():`; inside, `cm.update(logits, masks)` for every batch.",
        "`total += loss.item() * len(images)`, `count += len(images)`; return `total / count, cm.miou()`.",
    ),
    defines=("my_evaluate",),
    reference="unet_helpers/train.py: evaluate",
    forbidden=("unet_helpers.train.evaluate", "unet_helpers.train.fit"),
    next_steps="call `my_evaluate` twice in a row: the numbers are identical, because eval mode leaves BatchNorm alone.",
)
