"""Wrong training steps and evaluation passes (exercise 5), each with one plausible mistake."""
import torch

from unet_helpers import ConfusionMatrix


def step_without_zero_grad(model, images, masks, optimizer, loss_fn):
    model.train()
    loss = loss_fn(model(images), masks)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_without_train_mode(model, images, masks, optimizer, loss_fn):
    optimizer.zero_grad()
    loss = loss_fn(model(images), masks)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_before_backward(model, images, masks, optimizer, loss_fn):
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(images), masks)
    optimizer.step()
    loss.backward()
    return loss.item()


def backward_on_detached_loss(model, images, masks, optimizer, loss_fn):
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(images), masks).detach()
    loss.backward()
    optimizer.step()
    return loss.item()


def backward_on_item(model, images, masks, optimizer, loss_fn):
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(images), masks).item()
    loss.backward()
    optimizer.step()
    return loss


def returns_tensor(model, images, masks, optimizer, loss_fn):
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(images), masks)
    loss.backward()
    optimizer.step()
    return loss


def zero_grad_after_backward(model, images, masks, optimizer, loss_fn):
    model.train()
    loss = loss_fn(model(images), masks)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()


def train_mode_at_the_end(model, images, masks, optimizer, loss_fn):
    optimizer.zero_grad()
    loss = loss_fn(model(images), masks)
    loss.backward()
    optimizer.step()
    model.train()
    return loss.item()


def _evaluate(model, loader, loss_fn, num_classes, eval_mode=True, no_grad=True, weighted=True, per_batch_miou=False):
    if eval_mode:
        model.eval()
    cm, total, count, losses, mious = ConfusionMatrix(num_classes), 0.0, 0, [], []
    with torch.set_grad_enabled(not no_grad):
        for images, masks in loader:
            logits = model(images)
            loss = loss_fn(logits, masks).item()
            total, count = total + loss * len(images), count + len(images)
            losses.append(loss)
            cm.update(logits.detach(), masks)
            one = ConfusionMatrix(num_classes)
            one.update(logits.detach(), masks)
            mious.append(one.miou())
    mean_loss = total / count if weighted else sum(losses) / len(losses)
    return mean_loss, (sum(mious) / len(mious) if per_batch_miou else cm.miou())


def evaluate_without_eval_mode(model, loader, loss_fn, num_classes):
    return _evaluate(model, loader, loss_fn, num_classes, eval_mode=False)


def evaluate_with_gradients(model, loader, loss_fn, num_classes):
    return _evaluate(model, loader, loss_fn, num_classes, no_grad=False)


def evaluate_unweighted_loss(model, loader, loss_fn, num_classes):
    return _evaluate(model, loader, loss_fn, num_classes, weighted=False)


def evaluate_per_batch_miou(model, loader, loss_fn, num_classes):
    return _evaluate(model, loader, loss_fn, num_classes, per_batch_miou=True)


def evaluate_returns_tensors(model, loader, loss_fn, num_classes):
    loss, miou = _evaluate(model, loader, loss_fn, num_classes)
    return torch.tensor(loss), torch.tensor(miou)


def evaluate_switches_grad_off(model, loader, loss_fn, num_classes):
    """torch.set_grad_enabled(False) instead of a `with torch.no_grad():` block: gradients stay off for the caller."""
    torch.set_grad_enabled(False)
    return _evaluate(model, loader, loss_fn, num_classes, no_grad=False)


def evaluate_grad_off_for_good(model, loader, loss_fn, num_classes):
    """Gradients switched off with torch.set_grad_enabled(False) and never switched back: right numbers."""
    torch.set_grad_enabled(False)
    model.eval()
    cm, total, count = ConfusionMatrix(num_classes), 0.0, 0
    for images, masks in loader:
        logits = model(images)
        total, count = total + loss_fn(logits, masks).item() * len(images), count + len(images)
        cm.update(logits, masks)
    return total / count, cm.miou()


def evaluate_toggles_grad_mode(model, loader, loss_fn, num_classes):
    """Gradients switched off by hand and back on at the end: right numbers, but a caller that had them off
    (evaluating inside its own `with torch.no_grad():`) gets them switched on."""
    torch.set_grad_enabled(False)
    model.eval()
    cm, total, count = ConfusionMatrix(num_classes), 0.0, 0
    for images, masks in loader:
        logits = model(images)
        total, count = total + loss_fn(logits, masks).item() * len(images), count + len(images)
        cm.update(logits, masks)
    torch.set_grad_enabled(True)
    return total / count, cm.miou()


def evaluate_swapped_outputs(model, loader, loss_fn, num_classes):
    """Returns the loss and mIoU the wrong way round."""
    loss, miou = _evaluate(model, loader, loss_fn, num_classes)
    return miou, loss
