import pytest

from unet_helpers.views.tasks import DOMAINS, pick_task


def test_the_two_questions_decide_the_task():
    assert pick_task(separate_objects=False, label_every_pixel=True).task == "semantic"
    assert pick_task(separate_objects=False, label_every_pixel=False).task == "semantic"
    assert pick_task(separate_objects=True, label_every_pixel=False).task == "instance"
    assert pick_task(separate_objects=True, label_every_pixel=True).task == "panoptic"


def test_architecture_follows_domain_and_data():
    assert "U-Net" in pick_task(False, True, "microscopy / medical").architecture
    assert "DeepLabV3+" in pick_task(False, True, "driving / street scenes").architecture
    assert "U-Net" in pick_task(False, True, "driving / street scenes", little_data=True).architecture
    assert "Mask R-CNN" in pick_task(True, False, "driving / street scenes").architecture
    assert "border weight map" in pick_task(True, False, "microscopy / medical").architecture
    assert "Mask2Former" in pick_task(True, True).architecture


def test_modifiers_change_loss_metrics_and_reasons():
    plain = pick_task(False, True)
    assert "Dice" not in plain.loss.split("(")[0]
    rare = pick_task(False, True, rare_classes=True, precise_boundaries=True, large_images=True)
    assert rare.loss.startswith("cross-entropy + Dice")
    assert "boundary F1" in rare.metrics and "tiles" in rare.architecture
    assert len(rare.reasons) == len(plain.reasons) + 3
    assert "PQ" in pick_task(True, True).metrics and "AP" in pick_task(True, False).metrics


def test_markdown_and_bad_domain():
    text = pick_task(True, False, "microscopy / medical").to_markdown()
    assert text.startswith("**Task: instance segmentation**") and "- because:" in text
    assert len(DOMAINS) == 6
    with pytest.raises(ValueError, match=r"domain must be one of .*got 'space'"):
        pick_task(False, False, domain="space")


def test_task_picker_widget_follows_its_controls():
    from unet_helpers.views.widgets import TaskPicker

    picker = TaskPicker()
    assert picker.current_advice.task == "semantic"
    picker.boxes["separate_objects"].value = True
    assert picker.current_advice.task == "instance"
    picker.boxes["label_every_pixel"].value = True
    assert picker.current_advice.task == "panoptic" and "panoptic" in picker.text()
    picker.domain.value = "documents"
    assert picker.current_advice == pick_task(True, True, "documents")
    with pytest.raises(ValueError, match=r"unknown questions \['colour'\]"):
        TaskPicker(colour=True)
