"""Fixtures for the app's tests: an offscreen Qt, a window on temporary settings, and a leak check.

Everything runs on the offscreen platform; training runs are kept tiny (tens of iterations, batch 16).
"""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before anything imports Qt

from collections.abc import Callable  # noqa: E402

import pyqtgraph as pg  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PySide6.QtCore import QCoreApplication, QEvent, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget  # noqa: E402

import magan_gui.gui.main_window as main_window_module  # noqa: E402
from magan_gui.gui.app import build_window  # noqa: E402
from magan_gui.gui.main_window import MainWindow  # noqa: E402
from magan_gui.gui.worker import cpu_cores  # noqa: E402

pg.setConfigOptions(imageAxisOrder="row-major")

TINY = 30          # pretraining / calibration iterations of a test run
TINY_BATCH = 16


# -- helpers the tests share ---------------------------------------------------------------------------
def flush_events() -> None:
    """Process pending events, including deferred deletions (deleteLater)."""
    QApplication.processEvents()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QApplication.processEvents()


def new_visible_top_levels(before: set[QWidget]) -> list[QWidget]:
    """Top-level widgets shown now that were not there in ``before``."""
    return [w for w in QApplication.topLevelWidgets() if w not in before and w.isVisible()]


def open_message_boxes(window: QWidget) -> list[QMessageBox]:
    """The message boxes (errors) the window shows now."""
    return [box for box in window.findChildren(QMessageBox) if box.isVisible()]


def close_message_boxes(window: QWidget) -> list[str]:
    """Close the error boxes the window shows, as a person clicking OK would; return their texts."""
    texts = []
    for box in open_message_boxes(window):
        texts.append(box.text())
        box.button(QMessageBox.StandardButton.Ok).click()
    flush_events()
    return texts


def set_tiny(panel, iterations: int = TINY, batch: int = TINY_BATCH) -> None:
    """Type tiny settings into a run panel's spin boxes."""
    panel.iterations.setValue(iterations)
    panel.batch.setValue(batch)


# -- fixtures ------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def check_top_level_leaks(qapp):
    """Fail a test that leaves visible top-level widgets behind (after its widgets were closed and deleted).

    pytest-qt closes and deleteLater()s the widgets registered with qtbot before fixture teardown,
    so what is still shown here was never registered, never closed, or was re-parented to nothing.
    """
    flush_events()
    before = set(QApplication.topLevelWidgets())
    yield
    flush_events()
    leaked = new_visible_top_levels(before)
    if leaked:
        names = [f"{type(w).__name__}({w.windowTitle()!r})" for w in leaked]
        for w in leaked:
            w.close()
            w.deleteLater()
        flush_events()
        pytest.fail(f"visible top-level widgets left behind: {', '.join(names)}")


@pytest.fixture(autouse=True)
def restore_torch_threads():
    """A window makes the test's thread (its GUI thread) serial; later tests get every core back."""
    yield
    torch.set_num_threads(cpu_cores())


@pytest.fixture()
def settings_path(tmp_path, monkeypatch):
    """Point MainWindow's QSettings at a temporary ini file (never the user's settings)."""
    path = tmp_path / "s.ini"
    monkeypatch.setattr(main_window_module, "QSettings",
                        lambda *args: QSettings(str(path), QSettings.Format.IniFormat))
    return path


@pytest.fixture()
def make_window(qtbot, settings_path):
    """Build windows through app.build_window, shown, with their start-up true images loaded.

    At teardown any run is stopped and its thread waited for; error boxes the test did not close
    itself fail the test (an unexpected error).
    """
    unexpected: list[str] = []

    def before_close(w: MainWindow) -> None:
        w.ask_before_losing_work = lambda question: "discard"   # a test's leftovers are not work to save
        if w.thread is not None:
            assert w.wait_for_thread(30000), "the run did not stop"
        qtbot.waitUntil(lambda: not w.busy, timeout=30000)
        unexpected.extend(close_message_boxes(w))

    def make(*, wait_true: bool = True, **kwargs) -> MainWindow:
        w = build_window(**kwargs)
        qtbot.addWidget(w, before_close_func=before_close)
        w.show()
        qtbot.waitExposed(w)
        if wait_true:
            qtbot.waitUntil(lambda: w.session.true is not None and not w.busy, timeout=30000)
        return w

    yield make
    assert not unexpected, f"errors shown that the test did not expect: {unexpected}"


@pytest.fixture()
def window(make_window) -> MainWindow:
    """The app as ``magan-gui`` opens it: lines, with a 10000-image closure-test set."""
    return make_window()


@pytest.fixture()
def wait_run(qtbot) -> Callable[[MainWindow], None]:
    """Wait until the window's run and its thread are over."""

    def wait(w: MainWindow, timeout: int = 60000) -> None:
        qtbot.waitUntil(lambda: not w.busy, timeout=timeout)

    return wait
