"""Progress bars for the training loop (``train.py``) that a saved notebook shows finished.

In a terminal ``progress_bar`` is ``tqdm``'s text bar. In a Jupyter kernel ``tqdm.auto`` draws an
ipywidgets bar; a notebook saved without widget state (the way the lessons are stored) keeps only
the text the bar had when it was first displayed, ``0%|          | 0/50``, and that is what a
repository page shows. Here the same widget bar is displayed with a display id, and when it
closes the stored copy is replaced by its final text (``epochs: 100%|##########| 10/10 ...``), or
by nothing for a bar with ``leave=False``, which also vanishes from the live page.

Used by ``train_one_epoch``, ``evaluate`` and ``fit`` (``notebooks/06_training.ipynb``).
"""
from __future__ import annotations

from typing import Iterable

from tqdm.auto import tqdm as auto_tqdm


def is_notebook_bar(bar_class: type) -> bool:
    """True when ``bar_class`` is (derived from) tqdm's ipywidgets bar, ``tqdm.notebook.tqdm``.

    Read from the class's bases, so nothing is imported: ``tqdm.auto`` loads ``tqdm.notebook``
    (and ipywidgets) only inside a kernel.
    """
    return any(base.__module__ == "tqdm.notebook" for base in bar_class.__mro__)


def with_final_text(bar_class: type, display: object = None) -> type:
    """A subclass of the notebook bar ``bar_class`` whose stored output ends as its final state.

    Args:
        bar_class: ``tqdm.notebook.tqdm`` or a class derived from it (``tqdm.auto.tqdm`` in a kernel).
        display: ``IPython.display.display`` (default), or a stand-in with the same signature.
    """
    if display is None:
        from IPython.display import display

    class FinalTextBar(bar_class):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, display=False, **kwargs)
            self.handle = None if self.disable else display(self.container, display_id=True)
            self.displayed = True

        def close(self) -> None:
            if self.disable:  # closed already (tqdm sets ``disable`` when it closes), or never shown
                return
            super().close()
            if self.handle is not None:
                if self.leave:
                    self.handle.update(self.container)  # its text is now the last frame
                else:
                    self.handle.update({"text/plain": ""}, raw=True)

    return FinalTextBar


def progress_bar(iterable: Iterable, desc: str, leave: bool = True, disable: bool = False):
    """``tqdm(iterable, desc=desc, leave=leave, disable=disable)``; in a notebook, one that is stored finished."""
    if disable or not is_notebook_bar(auto_tqdm):
        return auto_tqdm(iterable, desc=desc, leave=leave, disable=disable)
    return with_final_text(auto_tqdm)(iterable, desc=desc, leave=leave)
