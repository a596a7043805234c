"""Wrong answers to exercise 13, part 0: ``my_train_steps(model, loader, loss_fn, optimizer, scheduler, steps)``."""
from __future__ import annotations

import torch

from unet_helpers.train import train_one_epoch


def _step(model, images, masks, loss_fn, optimizer):
    optimizer.zero_grad()
    loss = loss_fn(model(images), masks)
    loss.backward()
    optimizer.step()
    return loss


def one_pass_only(model, loader, loss_fn, optimizer, scheduler, steps):
    """Stops when the loader runs out, whatever the budget."""
    model.train()
    losses = []
    for images, masks in loader:
        losses.append(_step(model, images, masks, loss_fn, optimizer).item())
        scheduler.step()
        if len(losses) == steps:
            break
    return losses


def finishes_the_pass(model, loader, loss_fn, optimizer, scheduler, steps):
    """Counts steps only between passes: overshoots the budget."""
    model.train()
    losses = []
    while len(losses) < steps:
        for images, masks in loader:
            losses.append(_step(model, images, masks, loss_fn, optimizer).item())
            scheduler.step()
    return losses


def scheduler_per_pass(model, loader, loss_fn, optimizer, scheduler, steps):
    """Steps the one-cycle schedule once per pass (epoch style) instead of once per batch."""
    model.train()
    losses = []
    while len(losses) < steps:
        for images, masks in loader:
            losses.append(_step(model, images, masks, loss_fn, optimizer).item())
            if len(losses) == steps:
                break
        scheduler.step()
    return losses


def scheduler_before_step(model, loader, loss_fn, optimizer, scheduler, steps):
    """scheduler.step() before optimizer.step(): every step uses the next step's learning rate."""
    model.train()
    losses = []
    while len(losses) < steps:
        for images, masks in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(images), masks)
            loss.backward()
            scheduler.step()
            optimizer.step()
            losses.append(loss.item())
            if len(losses) == steps:
                break
    return losses


def no_train_mode(model, loader, loss_fn, optimizer, scheduler, steps):
    """Trusts the caller to have put the model in train mode."""
    losses = []
    while len(losses) < steps:
        for images, masks in loader:
            losses.append(_step(model, images, masks, loss_fn, optimizer).item())
            scheduler.step()
            if len(losses) == steps:
                break
    return losses


def no_zero_grad(model, loader, loss_fn, optimizer, scheduler, steps):
    """Gradients accumulate from step to step."""
    model.train()
    losses = []
    while len(losses) < steps:
        for images, masks in loader:
            loss = loss_fn(model(images), masks)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            if len(losses) == steps:
                break
    return losses


def returns_tensors(model, loader, loss_fn, optimizer, scheduler, steps):
    """Keeps the loss tensors (and their graphs) instead of floats."""
    model.train()
    losses = []
    while len(losses) < steps:
        for images, masks in loader:
            losses.append(_step(model, images, masks, loss_fn, optimizer))
            scheduler.step()
            if len(losses) == steps:
                break
    return losses


def delegates_to_package(model, loader, loss_fn, optimizer, scheduler, steps):
    """Calls the package's epoch trainer."""
    model.train()
    train_one_epoch(model, loader, loss_fn, optimizer)
    return [0.0] * steps


def reseeds_globally(model, loader, loss_fn, optimizer, scheduler, steps):
    """Right loop, but calls torch.manual_seed: the caller's random stream is reset."""
    torch.manual_seed(42)
    model.train()
    losses = []
    while len(losses) < steps:
        for images, masks in loader:
            losses.append(_step(model, images, masks, loss_fn, optimizer).item())
            scheduler.step()
            if len(losses) == steps:
                break
    return losses
