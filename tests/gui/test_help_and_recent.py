"""Help ▸ Quick start and About, and File ▸ Open Recent, used as a person would: menus chosen, widgets read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialogButtonBox, QLabel, QMenu, QPushButton, QTextBrowser

import magan_gui
import magan_gui.gui.main_window as main_window_module
from magan_gui.core.project import Project

from .conftest import close_message_boxes, open_message_boxes

# buttons the quick start names: each must be one the window really has
GUIDE_BUTTONS = ("Parameter ranges…", "Generate closure-test images", "Load true images…", "Load folder…",
                 "Use an existing bank…", "Load emulator…", "Continue", "Export best-match parameters…",
                 "Export emulator…", "Save plots as PNG…", "Export eigentunes…", "Compare with other results…",
                 "Best match", "Sample", "Default", "Simulate")


# -- helpers -------------------------------------------------------------------------------------------
def plain(text: str) -> str:
    """A menu text as the menu shows it: '&' marks a shortcut letter, '&&' is a '&'."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&")


def menu(window, title: str) -> QMenu:
    """A menu of the menu bar, by the title it shows."""
    for action in window.menuBar().actions():
        if plain(action.text()) == title:
            return action.menu()
    raise AssertionError(f"no {title} menu")


def entry(parent: QMenu, text: str) -> QAction:
    """The entry of ``parent`` showing ``text``."""
    for action in parent.actions():
        if plain(action.text()) == text:
            return action
    raise AssertionError(f"no {text!r} in {[plain(a.text()) for a in parent.actions()]}")


def recent_menu(window) -> QMenu:
    return entry(menu(window, "File"), "Open Recent").menu()


def recent_paths(window) -> list[str]:
    """The projects File ▸ Open Recent offers, top to bottom, as the menu shows them when opened."""
    recent = recent_menu(window)
    recent.aboutToShow.emit()
    return [action.data() for action in recent.actions() if action.data()]


def choose_recent(window, path: Path) -> None:
    for action in recent_menu(window).actions():
        if action.data() == str(path):
            assert path.name in plain(action.text())
            action.trigger()
            return
    raise AssertionError(f"{path} is not in Open Recent")


def save_by_menu(window, monkeypatch, path: Path) -> None:
    """File ▸ Save project…, typing ``path`` into the file dialog."""
    monkeypatch.setattr(main_window_module.QFileDialog, "getSaveFileName",
                        staticmethod(lambda *args, **kwargs: (str(path), "")))
    entry(menu(window, "File"), "Save project…").trigger()
    assert window.project_path == str(path)


def open_by_menu(window, monkeypatch, path: Path) -> None:
    """File ▸ Open project…, choosing ``path`` in the file dialog."""
    monkeypatch.setattr(main_window_module.QFileDialog, "getOpenFileName",
                        staticmethod(lambda *args, **kwargs: (str(path), "")))
    entry(menu(window, "File"), "Open project…").trigger()
    assert window.project_path == str(path)


@pytest.fixture()
def colleague_project(tmp_path, lines_true) -> Path:
    """A project made elsewhere: lines with 256 closure-test images, nothing trained."""
    path = tmp_path / "colleague" / "lines-256.magan"
    path.parent.mkdir()
    Project("lines", lines_true).save(path)
    return path


# -- help ----------------------------------------------------------------------------------------------
def test_the_help_menu_follows_file_and_run(window):
    assert [plain(a.text()) for a in window.menuBar().actions()] == ["File", "Run", "View", "Help"]
    help_menu = menu(window, "Help")
    assert [plain(a.text()) for a in help_menu.actions()] == ["Quick start", "About magan-gui"]
    assert entry(help_menu, "Quick start").shortcut() == QKeySequence("F1")


def test_quick_start_guides_through_every_panel_beside_the_window(qtbot, window):
    entry(menu(window, "Help"), "Quick start").trigger()
    dialog = window.quick_start_dialog
    assert dialog.isVisible() and not dialog.isModal()
    assert dialog.width() >= 600 and dialog.height() >= 480
    text = dialog.findChild(QTextBrowser).toPlainText()
    for i in range(window.tabs.count()):
        name = window.tabs.tabText(i).split(maxsplit=1)[1]     # "1  True images" -> "True images"
        assert name in text, name
    buttons = {b.text() for b in window.findChildren(QPushButton)}
    for name in GUIDE_BUTTONS:
        assert name in buttons and name in text, name
    for words in ("good", "rough", "poor", "Not converged", "File ▸ Save project", "File ▸ Open project",
                  "File ▸ Open Recent", "File ▸ Recover the autosave", "Pause", "Stop", "magan --help",
                  "Mismatch", "Ensemble members", "View ▸ Emulator explorer", "magan tune", "magan compare"):
        assert words in text, words
    assert window.isEnabled() and window.tabs.isEnabled()     # the window stays usable beside it

    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert not dialog.isVisible()
    entry(menu(window, "Help"), "Quick start").trigger()      # shown again, the same guide
    assert window.quick_start_dialog is dialog and dialog.isVisible()
    qtbot.mouseClick(dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Close),
                     Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()


def test_about_names_the_version_torch_the_device_and_the_readme(qtbot, window):
    entry(menu(window, "Help"), "About magan-gui").trigger()
    dialog = window.about_dialog
    assert dialog.isVisible() and not dialog.isModal()
    assert open_message_boxes(window) == []                   # no error box: those are the window's reports
    text = dialog.findChild(QLabel, "about-text").text()
    readme = Path(magan_gui.__file__).parents[1] / "README.md"
    assert readme.is_file()
    for words in (f"magan-gui {magan_gui.__version__}", f"torch {torch.__version__}",
                  f"device in use: {window.session.device}", str(readme)):
        assert words in text, words
    qtbot.mouseClick(dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Close),
                     Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()


# -- open recent ---------------------------------------------------------------------------------------
def test_saved_and_opened_projects_are_listed_most_recent_first(window, monkeypatch, tmp_path, colleague_project):
    assert recent_paths(window) == []
    assert not entry(recent_menu(window), "No recent projects").isEnabled()
    mine = tmp_path / "mine.magan"
    save_by_menu(window, monkeypatch, mine)
    open_by_menu(window, monkeypatch, colleague_project)
    assert recent_paths(window) == [str(colleague_project), str(mine)]
    save_by_menu(window, monkeypatch, mine)                   # saved again: moved up, not listed twice
    assert recent_paths(window) == [str(mine), str(colleague_project)]
    window.autosave()
    entry(menu(window, "File"), "Recover the autosave").trigger()
    assert window.isWindowModified()                          # recovered...
    assert recent_paths(window) == [str(mine), str(colleague_project)]   # ... but the autosave is never listed


def test_choosing_a_recent_project_opens_it(window, monkeypatch, tmp_path, colleague_project, lines_true):
    mine = tmp_path / "mine.magan"
    save_by_menu(window, monkeypatch, mine)                   # the 10000-image closure test the app opens on
    open_by_menu(window, monkeypatch, colleague_project)
    assert len(window.session.true) == 256

    choose_recent(window, mine)
    assert window.project_path == str(mine) and len(window.session.true) == 10000
    assert "<b>10000</b>" in window.true_panel.info.text()
    assert recent_paths(window) == [str(mine), str(colleague_project)]
    choose_recent(window, colleague_project)
    assert window.session.true.sha256 == lines_true.sha256 and "<b>256</b>" in window.true_panel.info.text()
    assert recent_paths(window) == [str(colleague_project), str(mine)]


def test_a_project_that_is_gone_leaves_the_list_with_a_message(window, monkeypatch, tmp_path, colleague_project):
    gone = tmp_path / "gone.magan"
    save_by_menu(window, monkeypatch, gone)
    open_by_menu(window, monkeypatch, colleague_project)
    gone.unlink()
    choose_recent(window, gone)
    [message] = close_message_boxes(window)
    assert str(gone) in message and "no longer exists" in message
    assert recent_paths(window) == [str(colleague_project)]
    assert window.project_path == str(colleague_project) and len(window.session.true) == 256   # nothing changed


def test_clear_list_empties_it(window, monkeypatch, tmp_path, colleague_project):
    save_by_menu(window, monkeypatch, tmp_path / "mine.magan")
    open_by_menu(window, monkeypatch, colleague_project)
    assert len(recent_paths(window)) == 2
    entry(recent_menu(window), "Clear list").trigger()
    assert recent_paths(window) == []
    assert not entry(recent_menu(window), "No recent projects").isEnabled()
    assert not entry(recent_menu(window), "Clear list").isEnabled()


def test_the_list_keeps_the_last_eight(window, monkeypatch, tmp_path, colleague_project):
    copies = []
    for i in range(main_window_module.MAX_RECENT_PROJECTS + 1):
        copies.append(tmp_path / f"copy-{i}.magan")
        shutil.copy(colleague_project, copies[-1])
        open_by_menu(window, monkeypatch, copies[-1])
    assert recent_paths(window) == [str(p) for p in reversed(copies)][:8]
    labels = [plain(a.text()) for a in recent_menu(window).actions() if a.data()]
    assert labels[0] == f"1  {copies[-1].name}   ({tmp_path})"   # numbered, the name first, then its folder


def test_the_list_survives_a_new_window(make_window, monkeypatch, tmp_path, colleague_project):
    window = make_window()
    mine = tmp_path / "mine & yours.magan"                     # a '&' shows as itself, not as a shortcut mark
    save_by_menu(window, monkeypatch, mine)
    open_by_menu(window, monkeypatch, colleague_project)
    assert window.close()
    again = make_window()
    assert recent_paths(again) == [str(colleague_project), str(mine)]
    assert "mine & yours.magan" in plain(recent_menu(again).actions()[1].text())
    choose_recent(again, mine)
    assert again.project_path == str(mine) and len(again.session.true) == 10000
