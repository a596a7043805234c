"""``python -m unet_helpers``: train / predict / inspect / progress, in-process through ``main``."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from unet_helpers.checkpoint import load_checkpoint
from unet_helpers.course import progress as course_progress
from unet_helpers.cli import main
from unet_helpers.cli.common import parse_mask_values

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--base", "4", "--depth", "2", "--quiet"]
SYNTHETIC = ["--synthetic-train", "16", "--synthetic-val", "4", "--size", "32", "--steps-per-epoch", "2", *TINY]


def run_error(capsys, argv):
    """Run a command that must fail; return its one-line message."""
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def write_folder(root, names, size=(40, 48), values=(0, 255), seed=0):
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).save(root / "images" / f"{name}.png")
        mask = np.full(size, values[0], np.uint8)
        mask[5:20, 10:30] = values[1]
        Image.fromarray(mask).save(root / "masks" / f"{name}.png")


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "synthetic"
    assert main(["train", "--out", str(out), "--epochs", "1", *SYNTHETIC]) == 0
    return out


def test_help_for_every_command(capsys):
    for command in ([], ["train"], ["predict"], ["inspect"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--help"])
        assert exit_info.value.code == 0
        assert "usage: python -m unet_helpers" in capsys.readouterr().out
    done = subprocess.run([sys.executable, "-m", "unet_helpers", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and "train" in done.stdout and "inspect" in done.stdout


def test_train_synthetic_writes_run_files(synthetic_run):
    assert sorted(p.name for p in synthetic_run.iterdir()) == ["best.pt", "last.pt", "metrics.jsonl"]
    (line,) = [json.loads(x) for x in (synthetic_run / "metrics.jsonl").read_text().splitlines()]
    assert line["epoch"] == 1 and len(line["val"]["iou"]) == 3 and line["class_names"] == ["background", "circle", "square"]
    assert set(line) == {"epoch", "train", "val", "lr", "seconds", "class_names"}  # EpochRecord.to_json + names
    saved = load_checkpoint(synthetic_run / "last.pt")
    assert saved["epoch"] == 1 and saved["extra"]["class_names"] == ["background", "circle", "square"]
    assert saved["model"].config.base == 4 and saved["extra"]["total_steps"] == 2


def test_train_refuses_an_existing_run_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--epochs", "1", *SYNTHETIC]) == 0
    before = (out / "last.pt").read_bytes()
    err = run_error(capsys, ["train", "--out", str(out), "--epochs", "1", *SYNTHETIC])
    assert "already exist (last.pt, best.pt, metrics.jsonl); pass --overwrite" in err
    assert (out / "last.pt").read_bytes() == before
    assert main(["train", "--out", str(out), "--epochs", "1", "--overwrite", *SYNTHETIC]) == 0
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1  # replaced, not appended


def test_resume_continues_an_interrupted_run(tmp_path, monkeypatch, capsys):
    import unet_helpers.cli.train as cli_train

    plan = ["train", "--epochs", "2", *SYNTHETIC]
    assert main([*plan, "--out", str(tmp_path / "straight")]) == 0
    real_fit = cli_train.fit
    monkeypatch.setattr(cli_train, "fit", lambda model, train, val, loss, opt, epochs, **kw: real_fit(model, train, val, loss, opt, 1, **kw))
    split = tmp_path / "split"
    assert main([*plan, "--out", str(split)]) == 0  # stops after epoch 1, like an interrupted run
    monkeypatch.setattr(cli_train, "fit", real_fit)
    assert load_checkpoint(split / "last.pt")["epoch"] == 1
    assert main([*plan, "--out", str(split), "--resume", str(split / "last.pt")]) == 0
    straight = [json.loads(x) for x in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    resumed = [json.loads(x) for x in (split / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in resumed] == [1, 2] and load_checkpoint(split / "last.pt")["epoch"] == 2
    assert resumed[0]["train"]["loss"] == straight[0]["train"]["loss"]  # same seed, same first epoch
    assert resumed[1]["lr"] == pytest.approx(straight[1]["lr"], rel=1e-12)  # the one-cycle schedule went on
    capsys.readouterr()
    assert main([*plan, "--out", str(split), "--resume", str(split / "last.pt")]) == 0
    assert "nothing to do" in capsys.readouterr().out
    err = run_error(capsys, ["train", "--epochs", "3", *SYNTHETIC, "--out", str(split), "--resume", str(split / "last.pt")])
    assert "was planned for 4 steps but this command gives 6" in err
    err = run_error(capsys, [*plan, "--out", str(tmp_path / "other"), "--resume", str(tmp_path / "missing.pt")])
    assert "no checkpoint at" in err


def test_resume_refuses_another_number_of_classes(tmp_path, synthetic_run, capsys):
    write_folder(tmp_path / "data", ["a", "b", "c"])
    err = run_error(capsys, ["train", "--data", str(tmp_path / "data"), "--mask-values", "0:0,255:1", "--out", str(tmp_path / "r"),
                             "--resume", str(synthetic_run / "last.pt"), "--epochs", "2", "--val-names", "c", *TINY])
    assert "was trained for 3 classes but the data has 2" in err
    err = run_error(capsys, ["train", "--data", str(tmp_path / "data"), "--mask-values", "0:0,255:1", "--classes", "3", "--out", str(tmp_path / "r"),
                             "--resume", str(synthetic_run / "last.pt"), "--epochs", "2", "--val-names", "c", *TINY])
    assert "takes 3 image channels but the images have 1" in err


def test_train_errors_are_one_line(tmp_path, capsys):
    assert "data folder" in run_error(capsys, ["train", "--data", str(tmp_path / "nope"), "--classes", "2", "--out", str(tmp_path / "o")])
    write_folder(tmp_path / "d", ["a", "b"])
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "d" / "images" / "lonely.png")
    err = run_error(capsys, ["train", "--data", str(tmp_path / "d"), "--classes", "2", "--mask-values", "0:0,255:1", "--out", str(tmp_path / "o")])
    assert "lonely.png has no mask" in err
    (tmp_path / "d" / "images" / "lonely.png").unlink()
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(tmp_path / "d" / "masks" / "b.png")
    err = run_error(capsys, ["train", "--data", str(tmp_path / "d"), "--classes", "2", "--mask-values", "0:0,255:1", "--out", str(tmp_path / "o")])
    assert "is 40x48 (HxW) but its mask" in err
    assert "pass --classes K" in run_error(capsys, ["train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "o")])
    assert "must look like 0:0,255:1" in run_error(capsys, ["train", "--data", str(tmp_path / "d"), "--mask-values", "0-0", "--out", str(tmp_path / "o")])
    err = run_error(capsys, ["train", "--data", str(tmp_path / "d"), "--mask-values", "0:0,255:3", "--classes", "2", "--out", str(tmp_path / "o")])
    assert "maps to class 3 but there are only 2 classes" in err
    err = run_error(capsys, ["train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "d" / "run"), "--classes", "2"])
    assert "is (inside) the input folder" in err
    d, o = str(tmp_path / "d"), str(tmp_path / "o")
    Image.fromarray(np.zeros((40, 48), np.uint8)).save(tmp_path / "d" / "masks" / "b.png")
    assert "--class-names lists 3 names but there are 2 classes" in run_error(capsys, ["train", "--data", d, "--classes", "2", "--class-names", "x,y,z", "--out", o])
    assert "--val-names ['q'] are not images in" in run_error(capsys, ["train", "--data", d, "--classes", "2", "--val-names", "q", "--out", o])
    assert "no training images left after taking 2 for validation" in run_error(capsys, ["train", "--data", d, "--classes", "2", "--val-names", "a,b", "--out", o])
    err = run_error(capsys, ["train", "--data", d, "--mask-values", "0:0,255:1", "--val-names", "b", "--val-crop", "100", "--out", o, *TINY])
    assert "--val-crop 100 is larger than the smallest validation image side (40 px, " in err and "b.png (40x48)); use --val-crop 40" in err
    assert not (tmp_path / "o").exists()


def test_parse_mask_values():
    assert parse_mask_values("0:0, 128:2,255:1") == {0: 0, 128: 2, 255: 1}
    assert parse_mask_values(None) is None


def test_predict_tiles_large_images_like_predict_tiled(tmp_path, synthetic_run, capsys):
    from unet_helpers.inference import predict, predict_tiled

    write_folder(tmp_path / "d", ["big", "small"], size=(70, 150))
    Image.fromarray(np.full((40, 50), 200, np.uint8)).save(tmp_path / "d" / "images" / "small.png")
    out = tmp_path / "pred"
    assert main(["predict", str(synthetic_run / "best.pt"), str(tmp_path / "d" / "images"), str(out), "--tile", "64"]) == 0
    assert "wrote 2 mask(s)" in capsys.readouterr().out
    model = load_checkpoint(synthetic_run / "best.pt")["model"]
    for name, tiled in (("big", True), ("small", False)):
        gray = torch.from_numpy(np.array(Image.open(tmp_path / "d" / "images" / f"{name}.png"))).float() / 255
        image = gray.expand(3, *gray.shape)  # grayscale files are read as RGB for a 3-channel model
        expected = predict_tiled(model, image, tile=64, overlap=0.25, batch_size=4) if tiled else predict(model, image)
        written = np.array(Image.open(out / f"{name}.png"))
        assert written.dtype == np.uint8 and np.array_equal(written, expected.numpy())


def test_predict_refuses_to_overwrite(tmp_path, synthetic_run, capsys):
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.zeros((32, 40, 3), np.uint8)).save(images / "x.png")
    ckpt = str(synthetic_run / "best.pt")
    assert "is (inside) the input folder" in run_error(capsys, ["predict", ckpt, str(images), str(images)])
    assert "is (inside) the input folder" in run_error(capsys, ["predict", ckpt, str(images), str(images / "sub")])
    assert main(["predict", ckpt, str(images), str(tmp_path / "out"), "--quiet"]) == 0
    assert "already exist (x.png); pass --overwrite" in run_error(capsys, ["predict", ckpt, str(images), str(tmp_path / "out")])
    assert main(["predict", ckpt, str(images), str(tmp_path / "out"), "--overwrite", "--quiet"]) == 0
    assert "predicts 3 classes but --classes is 2" in run_error(capsys, ["predict", ckpt, str(images), str(tmp_path / "o2"), "--classes", "2"])
    assert "input folder" in run_error(capsys, ["predict", ckpt, str(tmp_path / "none"), str(tmp_path / "o3")])
    assert "no checkpoint at" in run_error(capsys, ["predict", str(tmp_path / "no.pt"), str(images), str(tmp_path / "o4")])
    assert "stores no mask values" in run_error(capsys, ["predict", ckpt, str(images), str(tmp_path / "o5"), "--stored-values"])
    (tmp_path / "empty").mkdir()
    assert "no images in" in run_error(capsys, ["predict", ckpt, str(tmp_path / "empty"), str(tmp_path / "o6")])


def test_inspect_errors(tmp_path, capsys):
    write_folder(tmp_path / "a", ["x", "y"])
    write_folder(tmp_path / "b", ["x", "z"])
    err = run_error(capsys, ["inspect", str(tmp_path / "a" / "masks"), str(tmp_path / "b" / "masks"), "--mask-values", "0:0,255:1"])
    assert "mask names do not pair up: 1 only in" in err and "['y']" in err and "['z']" in err
    write_folder(tmp_path / "c", ["x", "y"], size=(20, 20))
    err = run_error(capsys, ["inspect", str(tmp_path / "a" / "masks"), str(tmp_path / "c" / "masks"), "--mask-values", "0:0,255:1"])
    assert "is 40x48 but" in err and "is 20x20" in err
    assert "predicted-mask folder" in run_error(capsys, ["inspect", str(tmp_path / "none"), str(tmp_path / "a" / "masks")])
    assert "true-mask folder" in run_error(capsys, ["inspect", str(tmp_path / "a" / "masks"), str(tmp_path / "none")])
    (tmp_path / "e1").mkdir()
    (tmp_path / "e2").mkdir()
    assert "no masks in" in run_error(capsys, ["inspect", str(tmp_path / "e1"), str(tmp_path / "e2")])
    err = run_error(capsys, ["inspect", str(tmp_path / "a" / "masks"), str(tmp_path / "a" / "masks"), "--mask-values", "0:0"])
    assert "values [255] that mask_values does not map" in err


def test_progress_is_delegated(monkeypatch):
    seen = []
    monkeypatch.setattr(course_progress, "main", lambda argv: seen.append(argv) or 3)
    assert main(["progress", "--help", "--all"]) == 3 and seen == [["--help", "--all"]]


# -- the real datasets ---------------------------------------------------------------------------


def copy_subset(source, target, names, crop=None, suffix=".png"):
    for sub in ("images", "masks"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    for name in names:
        image_path = next((source / "images").glob(f"{name}.*"))
        for path, dest in ((image_path, target / "images" / image_path.name), (source / "masks" / f"{name}.png", target / "masks" / f"{name}.png")):
            if crop is None:
                shutil.copy(path, dest)
            else:
                with Image.open(path) as img:
                    img.crop(crop).save(dest)


@pytest.mark.data
def test_nuclei_subset_train_predict_inspect(data_dir, tmp_path, capsys):
    source = data_dir / "dsb2018_nuclei_256"
    names = sorted(p.stem for p in (source / "images").glob("*.png"))[:6]
    copy_subset(source, tmp_path / "data", names)
    run = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "data"), "--mask-values", "0:0,255:1", "--class-names", "background,nucleus",
                 "--crop", "64", "--val-names", names[-1], "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "2",
                 "--out", str(run), "--base", "4", "--depth", "3", "--quiet"]) == 0
    extra = load_checkpoint(run / "best.pt")["extra"]
    assert extra["mask_values"] == {0: 0, 255: 1} and extra["channels"] == 1 and extra["normalize"] == "per_image"
    pred = tmp_path / "pred"
    assert main(["predict", str(run / "best.pt"), str(tmp_path / "data" / "images"), str(pred), "--stored-values", "--tile", "128", "--quiet"]) == 0
    values = {int(v) for n in names for v in np.unique(np.array(Image.open(pred / f"{n}.png")))}
    assert values <= {0, 255}
    capsys.readouterr()
    assert main(["inspect", str(pred), str(tmp_path / "data" / "masks"), "--mask-values", "0:0,255:1", "--class-names", "background,nucleus", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_images"] == 6 and report["num_pixels"] == 6 * 256 * 256
    assert [c["name"] for c in report["classes"]] == ["background", "nucleus"]
    true_share = np.mean([np.array(Image.open(tmp_path / "data" / "masks" / f"{n}.png")) == 255 for n in names])
    assert report["classes"][1]["true_share"] == pytest.approx(true_share)


@pytest.mark.data
def test_sstem_crops_five_classes(data_dir, tmp_path, capsys):
    source = data_dir / "drosophila_vnc_sstem"
    copy_subset(source, tmp_path / "data", ["00", "01", "16"], crop=(100, 200, 420, 480))  # 320x280 crops, TIFF kept
    assert (tmp_path / "data" / "images" / "00.tif").exists()
    run = tmp_path / "run"
    names = "intracellular,membrane,glia,mitochondria,synapse"
    assert main(["train", "--data", str(tmp_path / "data"), "--class-names", names, "--crop", "64", "--val-crop", "128",
                 "--val-names", "16", "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "2", "--out", str(run), *TINY]) == 0
    line = json.loads((run / "metrics.jsonl").read_text())
    assert len(line["val"]["iou"]) == 5
    pred = tmp_path / "pred"
    assert main(["predict", str(run / "last.pt"), str(tmp_path / "data" / "images"), str(pred), "--tile", "128", "--quiet"]) == 0
    assert np.array(Image.open(pred / "16.png")).shape == (280, 320)
    capsys.readouterr()
    assert main(["inspect", str(pred), str(tmp_path / "data" / "masks"), "--classes", "5", "--class-names", names]) == 0
    text = capsys.readouterr().out
    assert "# Mask inspection report" in text and "synapse" in text and "3 image(s), 268,800 counted pixels" in text
    err = run_error(capsys, ["train", "--data", str(tmp_path / "data"), "--classes", "2", "--out", str(tmp_path / "r2"),
                             "--resume", str(run / "last.pt"), "--crop", "64", "--val-names", "16", *TINY])
    assert "was trained for 5 classes but the data has 2" in err


def test_train_in_channels_last_layout(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *SYNTHETIC, "--epochs", "1", "--channels-last", "--out", str(run)]) == 0
    raw = torch.load(run / "last.pt", weights_only=True)["model_state"]
    assert raw["inc.net.0.weight"].is_contiguous(memory_format=torch.channels_last)  # the flag reached the model
    saved = load_checkpoint(run / "last.pt")
    assert saved["epoch"] == 1 and saved["model"].config.base == 4  # loads into a default-layout UNet

