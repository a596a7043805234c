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


# -- malformed content, bounded configurations, safe writes (issue 15) ----------------------------


def test_numpy_scalars_are_refused_before_the_previous_file_is_replaced(tmp_path):
    import numpy as np

    model = UNet(1, 2, base=4, depth=2)
    path = save_checkpoint(tmp_path / "last.pt", model, extra={"best_miou": 0.5})
    before = path.read_bytes()
    for value, name in ((np.float64(0.7), "numpy.float64"), (np.int64(3), "numpy.int64"), (np.bool_(True), "numpy.bool")):
        with pytest.raises(TypeError, match=rf"extra\['best_miou'\] is a {name}"):
            save_checkpoint(path, model, extra={"best_miou": value})
    assert path.read_bytes() == before and load_checkpoint(path)["extra"]["best_miou"] == 0.5


def test_checkpoints_get_the_usual_file_mode_and_replace_a_symlink_instead_of_following_it(tmp_path):
    import os
    import stat

    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.pt").symlink_to(outside)
    path = save_checkpoint(tmp_path / "run" / "last.pt", UNet(1, 2, base=4, depth=2))
    assert outside.read_text() == "keep me" and not path.is_symlink()
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask != 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]


def _tampered(tmp_path, change):
    state = torch.load(save_checkpoint(tmp_path / "good.pt", UNet(1, 2, base=4, depth=2)), weights_only=True)
    change(state)
    torch.save(state, tmp_path / "bad.pt")
    return tmp_path / "bad.pt"


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s.pop("model_state"), r"damaged checkpoint: missing keys \['model_state'\]"),
    (lambda s: s.update(surprise=1), r"unknown keys \['surprise'\]"),
    (lambda s: s.update(epoch="3"), r"'epoch' is a str, expected int"),
    (lambda s: s.update(history={"a": 1}), r"'history' is a dict, expected list"),
    (lambda s: s.update(history=[{"epoch": 1}]), r"its history cannot be read"),
    (lambda s: s["model_config"].update(base="16"), r"base='16', which is not a valid value"),
    (lambda s: s["model_config"].update(base=2.5), r"base=2.5, which is not a valid value"),
    (lambda s: s["model_config"].update(base=True), r"base=True, which is not a valid value"),
    (lambda s: s["model_config"].update(up_mode="cubic"), r"cannot be built: up_mode"),
    (lambda s: s["model_config"].update(base=1_000_000), r"describing [0-9,]+ weights, but the file holds 7,[0-9]{3}.*more than"),
    (lambda s: s["model_config"].update(depth=3), r"describing [0-9,]+ weights, but the file holds"),
    (lambda s: s["model_config"].update(depth=10_000), r"depth=10000"),
    (lambda s: s["model_config"].update(extra_setting=1), r"unknown settings \['extra_setting'\]"),
    (lambda s: s["model_state"].update({"inc.net.0.weight": [1, 2]}), r"model_state\['inc.net.0.weight'\] is a list"),
    (lambda s: s.update(architecture="ResNet"), r"architecture 'ResNet'; known"),
    # found by tests/fuzz: a tensor as the format raised "Boolean value of Tensor ... is ambiguous"
    (lambda s: s.update(format=torch.zeros(3)), r"not a unet_helpers checkpoint of format .*; found 'Tensor'$"),
    (lambda s: s.update(format=7), r"not a unet_helpers checkpoint of format .*; found 7$"),
])
def test_malformed_content_is_one_clear_value_error(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        load_checkpoint(_tampered(tmp_path, change))


def test_truncated_file_and_mismatched_optimizer_state(tmp_path):
    model = UNet(1, 2, base=4, depth=2)
    optimizer = torch.optim.Adam(model.parameters())
    path = save_checkpoint(tmp_path / "a.pt", model, optimizer)
    (tmp_path / "cut.pt").write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"cut.pt is not a readable checkpoint"):
        load_checkpoint(tmp_path / "cut.pt")
    state = torch.load(path, weights_only=True)
    state["optimizer_state"] = {"state": {}, "param_groups": [{"params": [0]}]}
    torch.save(state, tmp_path / "opt.pt")
    with pytest.raises(ValueError, match=r"the optimizer state in .*opt.pt does not fit this optimizer"):
        load_checkpoint(tmp_path / "opt.pt", UNet(1, 2, base=4, depth=2), torch.optim.Adam(model.parameters()))
