import math
import pickle

import pytest
import torch

from unet_helpers import ConfusionMatrix, UNet
from unet_helpers.checkpoint import load_checkpoint, save_checkpoint
from unet_helpers.records import EpochRecord, Evaluation, TrainSummary


def test_round_trip_everything(tmp_path):
    model = UNet(1, 5, base=4, depth=2, up_mode="transpose")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
    model(torch.randn(2, 1, 16, 16)).mean().backward()
    optimizer.step()
    scheduler.step()
    counts = ConfusionMatrix(5)
    counts.update(torch.tensor([[[0, 1], [2, 2]]]), torch.tensor([[[0, 1], [2, 3]]]))  # class 4 absent: NaN
    history = [EpochRecord(1, TrainSummary(0.7, {"ce": 0.5}), Evaluation.from_counts(counts, 0.6), 1e-3, 1.5)]
    path = save_checkpoint(tmp_path / "runs" / "a.pt", model, optimizer, 1, history, scheduler, {"class_names": ["a", "b"]})
    assert path.exists() and [p.name for p in path.parent.iterdir()] == ["a.pt"]  # no temp files left

    state = load_checkpoint(path)  # rebuilt from the stored configuration
    rebuilt = state["model"]
    assert rebuilt.config == model.config
    assert all(torch.equal(rebuilt.state_dict()[k], v) for k, v in model.state_dict().items())
    assert state["epoch"] == 1 and state["history"][0].to_json() == history[0].to_json()
    assert state["history"][0].val.iou[:4] == (1.0, 1.0, 0.5, 0.0) and math.isnan(state["history"][0].val.iou[4])
    assert state["extra"] == {"class_names": ["a", "b"]}

    new_model = UNet(1, 5, base=4, depth=2, up_mode="transpose")
    new_optimizer = torch.optim.Adam(new_model.parameters(), lr=1.0)
    new_scheduler = torch.optim.lr_scheduler.StepLR(new_optimizer, 1)
    load_checkpoint(path, new_model, new_optimizer, new_scheduler)
    assert new_optimizer.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]
    assert new_scheduler.last_epoch == 1
    first = next(iter(optimizer.state.values()))["exp_avg"]
    assert torch.equal(next(iter(new_optimizer.state.values()))["exp_avg"], first)


def test_config_mismatch_is_a_clear_error(tmp_path):
    path = save_checkpoint(tmp_path / "k5.pt", UNet(3, 5, base=4, depth=2))
    with pytest.raises(ValueError, match=r"saved for a different model: num_classes: checkpoint 5 vs model 2"):
        load_checkpoint(path, UNet(3, 2, base=4, depth=2))


def test_refuses_non_checkpoints_and_arbitrary_pickles(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a unet_helpers checkpoint"):
        load_checkpoint(tmp_path / "other.pt")

    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")


def test_non_unet_model_needs_model_argument(tmp_path):
    conv = torch.nn.Conv2d(1, 2, 1)
    path = save_checkpoint(tmp_path / "c.pt", conv)
    with pytest.raises(ValueError, match="not a UNet or EncoderUNet; pass model="):
        load_checkpoint(path)
    other = torch.nn.Conv2d(1, 2, 1)
    assert torch.equal(load_checkpoint(path, other)["model"].weight, conv.weight)
    with pytest.raises(ValueError, match="do not fit this model"):
        load_checkpoint(path, torch.nn.Conv2d(1, 3, 1))


def test_extra_that_could_not_be_loaded_is_refused_before_writing(tmp_path):
    import numpy as np

    model = UNet(1, 2, base=4, depth=2)
    with pytest.raises(TypeError, match=r"extra\['weights'\] is a numpy.ndarray.*\.tolist\(\)"):
        save_checkpoint(tmp_path / "x.pt", model, extra={"weights": np.ones(2)})
    with pytest.raises(TypeError, match=r"history\[0\] is a dict; expected the EpochRecord objects that fit returns"):
        save_checkpoint(tmp_path / "x.pt", model, history=[{"miou": 0.5}])
    assert not (tmp_path / "x.pt").exists()
    path = save_checkpoint(tmp_path / "ok.pt", model, extra={"weights": np.ones(2).tolist(), "t": torch.ones(2)})
    assert load_checkpoint(path)["extra"]["weights"] == [1.0, 1.0]


def test_a_checkpoint_of_an_older_format_says_so(tmp_path):
    torch.save({"format": "unet_helpers.checkpoint/1", "model_state": {}}, tmp_path / "old.pt")
    with pytest.raises(ValueError, match=r"format 'unet_helpers.checkpoint/2'; found 'unet_helpers.checkpoint/1' \(written by an older"):
        load_checkpoint(tmp_path / "old.pt")


def test_a_unet_configuration_with_unknown_or_missing_settings_is_refused():
    from unet_helpers.unet import unet_from_config

    config = UNet(1, 2, base=4, depth=2).config.__dict__ | {"skip_connections": True}
    with pytest.raises(ValueError, match=r"got unknown \['skip_connections'\] and missing \[\]"):
        unet_from_config(config)
    with pytest.raises(ValueError, match=r"missing \['up_mode'\]"):
        unet_from_config({k: v for k, v in UNet(1, 2, base=4, depth=2).config.__dict__.items() if k != "up_mode"})
