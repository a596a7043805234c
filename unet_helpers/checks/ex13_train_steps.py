"""Check of exercise 13, part 1: training for a budget of steps, with a learning-rate schedule per step.

``my_train_steps(model, loader, loss_fn, optimizer, scheduler, steps) -> list[float]``: exactly
``steps`` optimisation steps, taking batches from ``loader`` and starting a new pass over it when
it runs out; the model in train mode; every step ``zero_grad``, forward, loss, ``backward``,
``optimizer.step()``, then ``scheduler.step()``; the loss of every step (before its update) as a
Python float. A budget of steps, not of epochs, is what makes runs on data sets of different
sizes, and a one-cycle schedule with ``total_steps`` fixed in advance, comparable.

Reference: the plain loop below, on a deep copy of the same model with an identical optimizer and
schedule; parameters *and* BatchNorm buffers are compared afterwards.
"""
from __future__ import annotations

import copy
import numbers
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from .compare import same
from .core import Property, PropertyFailed
from .isolation import call_learner
from .spec import ExerciseSpec
from .tools import generator

K = 3
BATCHES = (4, 4, 2)  # a loader of 10 images in batches of 4: a pass has 3 steps, the last one short


def _model(seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, K, 1))


def _loader(seed: int) -> DataLoader:
    gen = generator(1300 + seed)
    images, masks = torch.randn(sum(BATCHES), 1, 9, 7, generator=gen), torch.randint(0, K, (sum(BATCHES), 9, 7), generator=gen)
    # A generator of its own: iterating a DataLoader otherwise draws its base seed from the global generator.
    return DataLoader(TensorDataset(images, masks), batch_size=BATCHES[0], shuffle=False, generator=generator(0))


def _loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, target)


def _training(model: nn.Module, steps: int, schedule: bool = True) -> tuple[torch.optim.Optimizer, Any]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scheduler = (torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.2, total_steps=steps) if schedule
                 else torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0))
    return optimizer, scheduler


def reference_train_steps(model: nn.Module, loader, loss_fn: Callable, optimizer: torch.optim.Optimizer, scheduler: Any,
                          steps: int) -> list[float]:
    """``steps`` optimisation steps over ``loader`` (new passes as needed), the schedule stepped per batch."""
    model.train()
    losses: list[float] = []
    while len(losses) < steps:
        for images, masks in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(images), masks)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            if len(losses) == steps:
                break
    return losses


def _state(model: nn.Module) -> torch.Tensor:
    return torch.cat([t.detach().double().reshape(-1) for t in [*model.parameters(), *model.buffers()]])  # (P + B,)


def _run(fn: Callable[..., Any], steps: int, seed: int, eval_first: bool = False, stale_grads: bool = False) -> dict:
    mine = _model(seed)
    ref = copy.deepcopy(mine)
    (mine_opt, mine_sched), (ref_opt, ref_sched) = _training(mine, steps), _training(ref, steps)
    forwards: list[bool] = []
    mine.register_forward_pre_hook(lambda m, _i: forwards.append(m.training))
    if eval_first:
        mine.eval()
        ref.eval()
    if stale_grads:  # as if an earlier batch had run backward() without a step
        for p, q in zip(mine.parameters(), ref.parameters()):
            p.grad, q.grad = torch.ones_like(p), torch.ones_like(q)
    start = _state(mine)
    returned = call_learner(fn, mine, _loader(seed), _loss_fn, mine_opt, mine_sched, steps)
    expected = reference_train_steps(ref, _loader(seed), _loss_fn, ref_opt, ref_sched, steps)
    return dict(returned=returned, expected=expected, mine=mine, ref=ref, start=start, forwards=forwards,
                mine_sched=mine_sched, ref_sched=ref_sched, mine_opt=mine_opt, ref_opt=ref_opt)


def _losses(run: dict, what: str) -> list[float]:
    value = run["returned"]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                                                       for v in value):
        raise PropertyFailed("my_train_steps should return the loss of every step as a list of Python floats.",
                             value, "[1.13, 1.09, ...]", hint="Collect `loss.item()` after each step: a list of "
                             "tensors would keep every step's graph alive.")
    if len(value) != len(run["expected"]):
        raise PropertyFailed(f"You returned {len(value)} losses for steps={len(run['expected'])} ({what}).", len(value),
                             len(run["expected"]))
    return [float(v) for v in value]


def _step_count(run: dict, what: str) -> None:
    _losses(run, what)
    mine, ref = run["mine_sched"].last_epoch, run["ref_sched"].last_epoch
    if mine != ref:
        raise PropertyFailed(f"The schedule was stepped {mine} times for {ref} optimisation steps ({what}).", mine, ref,
                             hint="`scheduler.step()` once after every `optimizer.step()`, inside the batch loop.")


def _compare_state(run: dict, what: str) -> None:
    got, expected = _state(run["mine"]), _state(run["ref"])
    if same(got, expected, atol=1e-5):
        return
    if same(got, run["start"], atol=0.0, rtol=0.0):
        raise PropertyFailed(f"The model did not change ({what}).", "unchanged", "trained for the steps",
                             hint="optimizer.step() after loss.backward(), every step.")
    raise PropertyFailed(f"After the steps your model's parameters and BatchNorm statistics differ from the "
                         f"reference's ({what}); largest difference {float((got - expected).abs().max()):.3g}.",
                         got[:4], expected[:4])


def _returns_losses(fn: Callable[..., Any]) -> None:
    _losses(_run(fn, steps=2, seed=1), "steps=2")


def _stops_mid_pass(fn: Callable[..., Any]) -> None:
    run = _run(fn, steps=2, seed=2)
    _step_count(run, "steps=2, a pass of the loader has 3 batches")
    _compare_state(run, "steps=2")


def _more_passes(fn: Callable[..., Any]) -> None:
    run = _run(fn, steps=7, seed=3)
    _step_count(run, "steps=7: two full passes of 3 batches and one more batch")
    if not same(_losses(run, "steps=7"), run["expected"], atol=1e-5):
        raise PropertyFailed("Your per-step losses differ from the reference's (steps=7): the batches or the "
                             "learning rates of your steps are not the reference's.", run["returned"], run["expected"],
                             hint="Loop `while` fewer than `steps` steps are done, with an inner `for images, masks "
                                  "in loader:` that breaks as soon as the budget is reached.")
    _compare_state(run, "steps=7")


def _schedule(fn: Callable[..., Any]) -> None:
    run = _run(fn, steps=5, seed=4)
    _step_count(run, "steps=5, a one-cycle schedule over exactly 5 steps")
    mine, ref = run["mine_opt"].param_groups[0]["lr"], run["ref_opt"].param_groups[0]["lr"]
    if abs(mine - ref) > 1e-9:
        raise PropertyFailed("The learning rate after the steps differs from the schedule's.", mine, ref)
    _compare_state(run, "steps=5")


def _train_mode(fn: Callable[..., Any]) -> None:
    run = _run(fn, steps=3, seed=5, eval_first=True)
    if run["forwards"] and not all(run["forwards"]):
        raise PropertyFailed("The forward passes ran with the model in eval mode (left there by an evaluation).",
                             "model.training = False", "model.training = True",
                             hint="`model.train()` at the start: BatchNorm must use the batch statistics while training.")
    _compare_state(run, "model left in eval mode before the call")


def _zero_grad(fn: Callable[..., Any]) -> None:
    _compare_state(_run(fn, steps=3, seed=6, stale_grads=True), "stale gradients present before the call")


def _properties() -> list[Property]:
    data = "tiny conv -> BatchNorm -> ReLU -> conv model, SGD + OneCycleLR, 10 images in batches of 4, 4, 2"
    return [
        Property("returns the loss of every step as floats", f"{data}, steps=2", _returns_losses),
        Property("stops after `steps` steps, mid-pass", "steps=2 with 3 batches per pass: parameters and buffers",
                 _stops_mid_pass, "Count steps, not passes: break out of the batch loop as soon as the budget is spent."),
        Property("starts a new pass when the loader runs out", "steps=7 with 3 batches per pass", _more_passes),
        Property("scheduler.step() after every optimizer.step()", "OneCycleLR with total_steps=5", _schedule,
                 "OneCycleLR is built for a number of steps: step it once per batch, after the optimizer."),
        Property("model.train() at the start", "model left in eval mode", _train_mode),
        Property("optimizer.zero_grad() every step", "stale gradients present before the first step", _zero_grad,
                 "backward() adds to .grad: call optimizer.zero_grad() before every backward()."),
    ]


TRAIN_STEPS = ExerciseSpec(
    name="train_steps",
    title="Training for a budget of steps, the schedule stepped per batch",
    notebook="ex13_real_data",
    task="Write `my_train_steps(model, loader, loss_fn, optimizer, scheduler, steps) -> list[float]`: exactly `steps` "
         "optimisation steps over `loader` (a new pass whenever it runs out), `scheduler.step()` after each "
         "`optimizer.step()`, the loss of every step as a float.",
    properties=_properties,
    hints=(
        "Two loops: `while` the budget is not spent, `for` each batch of the loader; leave both as soon as `steps` "
        "steps are done.",
        "Each step: `optimizer.zero_grad()`, `loss = loss_fn(model(images), masks)`, `loss.backward()`, "
        "`optimizer.step()`, `scheduler.step()`, `losses.append(loss.item())`.",
        "`model.train()` once at the start; `if len(losses) == steps: break` inside the `for`, and the `while` "
        "condition `len(losses) < steps` ends the outer loop.",
    ),
    defines=("my_train_steps",),
    reference="unet_helpers/checks/ex13_train_steps.py: reference_train_steps (the package's fit counts epochs)",
    forbidden=("unet_helpers.train.fit", "unet_helpers.train.train_one_epoch",
               "unet_helpers.realdata.references.train_on_budget", "unet_helpers.realdata.references.compare_on_budget",
               "unet_helpers.checks.ex13_train_steps.reference_train_steps"),
    next_steps="the cells below train U-Nets on ssTEM crops with your function, for a budget of steps.",
)
