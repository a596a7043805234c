"""The task picker of ``notebooks/01_segmentation_tasks.ipynb``: questions in, advice out."""
from __future__ import annotations

import html

import ipywidgets as W
from matplotlib.figure import Figure

from ...viz import new_figure
from ..tasks import DOMAINS, pick_task
from .base import WIDE, LiveView

QUESTIONS = {
    "separate_objects": "touching objects of one class need their own ids",
    "label_every_pixel": "background regions ('stuff') need classes too",
    "rare_classes": "some class covers only a few % of the pixels",
    "precise_boundaries": "a pixel or two at the edges matters",
    "large_images": "images are too large for one forward pass",
    "little_data": "only hundreds of labelled images",
}


class TaskPicker(LiveView):
    """Answer a few questions about a problem; see the task, architecture, loss and metrics.

    ``current_advice`` holds the ``tasks.TaskAdvice`` for the current answers.
    """

    css_class = "unet-task-picker"

    def __init__(self, domain: str = "microscopy / medical", dpi: int = 72, **answers: bool) -> None:
        super().__init__(dpi)
        unknown = set(answers) - set(QUESTIONS)
        if unknown:
            raise ValueError(f"unknown questions {sorted(unknown)}; known: {sorted(QUESTIONS)}")
        self.domain = W.Dropdown(options=DOMAINS, value=domain, description="domain", style=WIDE)
        self.boxes = {key: W.Checkbox(value=bool(answers.get(key, False)), description=text, indent=False)
                      for key, text in QUESTIONS.items()}
        self._watch(self.domain, *self.boxes.values())
        self._layout([self.domain, *self.boxes.values()])

    def _compute(self) -> None:
        self.current_advice = pick_task(domain=self.domain.value, **{k: b.value for k, b in self.boxes.items()})

    def figure(self) -> Figure:
        advice = self.current_advice
        fig = new_figure(9, 2.2)
        fig.text(0.02, 0.8, f"{advice.task} segmentation", fontsize=16, weight="bold")
        fig.text(0.02, 0.55, f"architecture: {advice.architecture}", fontsize=9, wrap=True)
        fig.text(0.02, 0.35, f"loss: {advice.loss}", fontsize=9, wrap=True)
        fig.text(0.02, 0.15, f"metrics: {advice.metrics}", fontsize=9, wrap=True)
        return fig

    def summary(self) -> str:
        return self.current_advice.to_markdown()

    def readout_html(self) -> str:
        a = self.current_advice
        items = "".join(f"<li>{html.escape(r)}</li>" for r in a.reasons)
        return (f"<b>{html.escape(a.task)} segmentation</b><br>architecture: {html.escape(a.architecture)}"
                f"<br>loss: {html.escape(a.loss)}<br>metrics: {html.escape(a.metrics)}<ul>{items}</ul>")
