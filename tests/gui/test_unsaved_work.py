"""No lost work: the unsaved mark, the autosave at the end of each stage, and the question on quitting
(finished or mid-run), answered as a person would."""

from __future__ import annotations

import magan_gui.gui.main_window as main_window_module
from magan_gui.core.project import Project

from .conftest import TINY, set_tiny
from .test_main_window import click


def _pretrain(qtbot, window, wait_run, iterations: int = TINY) -> None:
    panel = window.pretrain_panel
    window.tabs.setCurrentWidget(panel)
    set_tiny(panel, iterations)
    click(qtbot, panel.start_button)
    if iterations == TINY:
        wait_run(window)


def test_a_finished_stage_marks_the_window_unsaved_and_is_autosaved(qtbot, window, wait_run, tmp_path):
    assert not window.isWindowModified()                  # the example's true images are no work yet
    assert not window.autosave_path.exists()
    _pretrain(qtbot, window, wait_run)
    assert window.isWindowModified()
    autosaved = Project.load(window.autosave_path)
    assert autosaved.emulator is not None and autosaved.emulator.meta["iteration"] == TINY
    assert window.save_project(str(tmp_path / "mine.magan")) and not window.isWindowModified()
    assert window.project_path == str(tmp_path / "mine.magan")

    window.session.set_emulator(None)
    window.setWindowModified(False)
    assert window.recover_autosave()                      # File → Recover the autosave
    assert window.session.emulator.meta["iteration"] == TINY
    assert window.isWindowModified() and window.project_path is None   # Save must not write over the autosave


def test_quitting_with_unsaved_work_asks_and_cancel_or_save_lose_nothing(qtbot, window, wait_run, tmp_path,
                                                                      monkeypatch):
    _pretrain(qtbot, window, wait_run)
    questions = []
    window.ask_before_losing_work = lambda question: questions.append(question) or "cancel"
    assert not window.close() and window.isVisible()      # Cancel: the window stays, nothing changes
    assert "not saved" in questions[0] and str(window.autosave_path) in questions[0]

    target = tmp_path / "quit.magan"
    monkeypatch.setattr(main_window_module.QFileDialog, "getSaveFileName",
                        staticmethod(lambda *args, **kwargs: (str(target.with_suffix("")), "")))
    window.ask_before_losing_work = lambda question: "save"
    assert window.close()
    saved = Project.load(target)                           # the dialog's name, with .magan added
    assert saved.emulator is not None and saved.emulator.meta["iteration"] == TINY


def test_quitting_mid_run_can_save_what_the_run_reached(qtbot, window, tmp_path, monkeypatch):
    _pretrain(qtbot, window, None, iterations=100000)
    qtbot.waitUntil(lambda: window.pretrain_panel.progress.value() >= 5, timeout=60000)
    target = tmp_path / "mid-run.magan"
    monkeypatch.setattr(main_window_module.QFileDialog, "getSaveFileName",
                        staticmethod(lambda *args, **kwargs: (str(target), "")))
    questions = []
    window.ask_before_losing_work = lambda question: questions.append(question) or "save"
    assert window.close()
    assert "A run is in progress" in questions[0] and not window.busy
    saved = Project.load(target)
    assert saved.emulator is not None and 5 <= saved.emulator.meta["iteration"] < 100000


def test_quitting_without_new_work_asks_nothing(qtbot, window):
    window.ask_before_losing_work = lambda question: (_ for _ in ()).throw(AssertionError(question))
    assert window.close()
