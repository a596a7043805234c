"""Progress bars: a text bar outside a kernel; in a notebook, a stored output that ends finished."""
from __future__ import annotations

import pytest
from tqdm.auto import tqdm as auto_tqdm
from tqdm.std import tqdm as std_tqdm

from unet_helpers.progress import is_notebook_bar, progress_bar, with_final_text


class FakeHandle:
    """Records what ``DisplayHandle.update`` was given."""

    def __init__(self, shown: object) -> None:
        self.shown, self.updates = shown, []

    def update(self, obj: object, raw: bool = False) -> None:
        self.updates.append((obj, raw))


class FakeDisplay:
    def __init__(self) -> None:
        self.handles: list[FakeHandle] = []

    def __call__(self, obj: object, display_id: bool = False) -> FakeHandle:
        assert display_id, "the bar must be displayed with a display id, or it cannot be updated"
        self.handles.append(FakeHandle(obj))
        return self.handles[-1]


def test_outside_a_kernel_it_is_the_text_bar():
    assert not is_notebook_bar(auto_tqdm)  # pytest runs outside a Jupyter kernel
    assert not is_notebook_bar(std_tqdm)
    bar = progress_bar(range(3), "epochs", disable=True)
    assert list(bar) == [0, 1, 2]
    assert isinstance(bar, auto_tqdm)


@pytest.fixture
def notebook_bar():
    pytest.importorskip("ipywidgets")
    from tqdm.notebook import tqdm as notebook_tqdm

    assert is_notebook_bar(notebook_tqdm)
    fake = FakeDisplay()
    return with_final_text(notebook_tqdm, display=fake), fake


def test_a_kept_bar_is_stored_with_its_last_frame(notebook_bar):
    bar_class, fake = notebook_bar
    bar = bar_class(range(4), desc="epochs")
    assert "0/4" in repr(fake.handles[0].shown)  # what a notebook would store at first: the first frame
    for _ in bar:
        bar.set_postfix(loss="0.123")
    (handle,) = fake.handles
    (shown, raw), = handle.updates
    assert not raw
    assert "100%" in repr(shown) and "4/4" in repr(shown) and "loss=0.123" in repr(shown), repr(shown)


def test_a_bar_that_leaves_nothing_is_replaced_by_nothing(notebook_bar):
    bar_class, fake = notebook_bar
    assert list(bar_class(range(3), desc="epoch 1", leave=False)) == [0, 1, 2]
    assert fake.handles[0].updates == [({"text/plain": ""}, True)]


def test_closing_twice_updates_once(notebook_bar):
    bar_class, fake = notebook_bar
    bar = bar_class(range(2), desc="validate")
    list(bar)
    bar.close()
    assert len(fake.handles[0].updates) == 1


def test_a_disabled_bar_displays_nothing(notebook_bar):
    bar_class, fake = notebook_bar
    assert list(bar_class(range(2), desc="x", disable=True)) == [0, 1]
    assert fake.handles == []
