"""The app driven as a person would: clicks, typed settings, waiting for runs; never time.sleep."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shiboken6
import torch
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QToolBar

import magan_gui.gui.panels.pretraining as pretraining_module
import magan_gui.gui.panels.true_images as true_images_module
from magan_gui.bench.paper import PAPER_TRUTH
from magan_gui.core.emulator import TrainedEmulator
from magan_gui.core.results import samples_path_for

from ..conftest import REPO_ROOT
from .conftest import TINY, close_message_boxes, open_message_boxes, set_tiny

LEFT = Qt.MouseButton.LeftButton


def click(qtbot, button) -> None:
    assert button.isVisible() and button.isEnabled(), f"{button.text()!r} cannot be clicked now"
    qtbot.mouseClick(button, LEFT)


def toolbar_button(window, action):
    toolbar = window.findChild(QToolBar, "run-toolbar")
    return toolbar.widgetForAction(action)


def load_emulator_by_dialog(qtbot, window, monkeypatch, path) -> None:
    """Pretraining panel: 'Load emulator…', choosing ``path`` in the file dialog."""
    monkeypatch.setattr(pretraining_module.QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(path), "")))
    window.tabs.setCurrentWidget(window.pretrain_panel)
    with qtbot.waitSignal(window.session.emulator_changed, timeout=10000):
        click(qtbot, window.pretrain_panel.load_button)


def calibrate(qtbot, window, wait_run) -> None:
    """Calibration panel: tiny settings, Start, wait for the result."""
    panel = window.calibrate_panel
    window.tabs.setCurrentWidget(panel)
    set_tiny(panel)
    click(qtbot, panel.start_button)
    assert window.busy and window.state_label.text() == "running"
    qtbot.waitUntil(lambda: window.session.result is not None, timeout=60000)
    wait_run(window)


@pytest.fixture()
def calibrated(qtbot, window, wait_run, monkeypatch, tiny_emulator_path):
    """The app after loading an emulator and a tiny calibration."""
    load_emulator_by_dialog(qtbot, window, monkeypatch, tiny_emulator_path)
    calibrate(qtbot, window, wait_run)
    return window


# -- true images ---------------------------------------------------------------------------------------
def test_opens_on_lines_with_the_paper_closure_test(window):
    panel = window.true_panel
    assert window.session.simulator_spec == "lines" and panel.simulator_box.currentText() == "lines"
    assert len(window.session.true) == 10000 and window.session.true.shape == (28, 28)
    assert window.session.true.params is not None
    mean, std = PAPER_TRUTH["lines"]
    assert panel.param_table.rowCount() == 4
    assert [b.value() for b in panel.mean_boxes] == pytest.approx(mean)
    assert [b.value() for b in panel.std_boxes] == pytest.approx(std)
    assert window.session.true.params.mean(axis=0) == pytest.approx(mean, abs=0.05)
    assert "10000" in panel.info.text()
    assert panel.grid.last_array is not None and panel.grid.last_array.shape[0] > 28
    assert window.state_label.text() == "ready" and not window.busy
    assert window.tabs.currentWidget() is panel


def test_choosing_circles_and_generating_a_small_set(qtbot, window, wait_run):
    panel = window.true_panel
    box = panel.simulator_box
    box.setFocus()
    with qtbot.waitSignal(window.session.simulator_changed, timeout=5000):
        qtbot.keyClick(box, Qt.Key.Key_Down)   # the item after 'lines'; keyboard choices emit activated
    wait_run(window)                           # the simulator is loaded (and checked) in the worker
    assert box.currentText() == "circles"
    assert window.session.simulator.name == "circles"
    # lines' closure-test images are no test of circles: dropped, and the status bar says so
    assert window.session.true is None and "No true images yet" in panel.info.text()
    assert not panel.mean_image.last_array.any() and len(panel.hist_curve.getData()[1] or []) == 0   # nothing stale
    assert "true images dropped (they were simulated by another simulator)" in window.statusBar().currentMessage()
    assert panel.param_table.rowCount() == 5
    assert [b.value() for b in panel.mean_boxes] == pytest.approx(PAPER_TRUTH["circles"][0])
    assert len(window.calibrate_panel.histograms) == 5
    assert window.calibrate_panel.table.rowCount() == 5
    assert window.pretrain_panel.iterations.value() == 2000     # the quick preset for circles

    panel.count.setValue(300)
    click(qtbot, panel.generate_button)
    assert window.busy and not panel.generate_button.isEnabled()   # one job at a time
    with qtbot.waitSignal(window.session.true_changed, timeout=30000) as blocker:
        pass
    wait_run(window)
    true = blocker.args[0]
    assert true is window.session.true
    assert len(true) == 300 and true.params.shape == (300, 5) and "circles" in true.source
    assert "<b>300</b>" in panel.info.text()
    assert panel.generate_button.isEnabled()


def test_a_bad_file_is_refused_and_the_images_kept(qtbot, window, monkeypatch, tmp_path):
    before = window.session.true
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((5, 10, 12), np.float32))
    monkeypatch.setattr(true_images_module.QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(bad), "")))
    with qtbot.assertNotEmitted(window.session.true_changed):
        click(qtbot, window.true_panel.load_button)
    assert "10x12" in window.last_error and "28x28" in window.last_error
    assert window.session.true is before and len(window.session.true) == 10000
    assert [b.text() for b in open_message_boxes(window)] == [window.last_error]
    assert window.statusBar().currentMessage() == window.last_error
    assert close_message_boxes(window) == [window.last_error]
    assert open_message_boxes(window) == []


def test_a_good_file_loads(qtbot, window, monkeypatch, tmp_path, lines_true):
    path = tmp_path / "true.npz"
    lines_true.save_npz(path)
    monkeypatch.setattr(true_images_module.QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(path), "")))
    window.true_panel.mean_boxes[0].setValue(2.3)           # the last generated set's settings...
    click(qtbot, window.true_panel.load_button)
    assert window.session.true.source == str(path) and len(window.session.true) == 256
    assert window.true_panel.last_folder == str(tmp_path)
    # ... give way to the loaded images' own truth
    for box, value in zip(window.true_panel.mean_boxes, lines_true.params.mean(axis=0)):
        assert box.value() == pytest.approx(value, abs=0.01)
    for box, value in zip(window.true_panel.std_boxes, lines_true.params.std(axis=0, ddof=1)):
        assert box.value() == pytest.approx(value, abs=0.01)


def test_an_ambiguous_root_file_is_loaded_by_adding_a_selector_in_the_path_line(qtbot, window, monkeypatch, tmp_path,
                                                                                lines_true):
    from PySide6.QtCore import Qt

    from tests.core.test_root_input import _write, uproot  # noqa: F401  (skips without the root extra)

    images = lines_true.images[:5]
    path = _write(tmp_path / "data.root", {**{f"hit_{i}": images[i] for i in range(5)},
                                            "events": {"image": images[:3].astype(np.float32)}})
    monkeypatch.setattr(true_images_module.QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (path, "")))
    before = window.session.true
    click(qtbot, window.true_panel.load_button)             # histograms and a tree: which images?
    assert window.session.true is before and "hit_" in window.last_error and "events" in window.last_error
    close_message_boxes(window)
    line = window.true_panel.path_edit
    assert line.text() == path                               # the path is there to add a selector to
    line.setFocus()
    line.end(False)
    qtbot.keyClicks(line, ":hit_*")
    qtbot.keyClick(line, Qt.Key.Key_Return)
    assert window.session.true.source == f"{path}:hit_*" and len(window.session.true) == 5
    np.testing.assert_allclose(window.session.true.images, images, atol=1e-6)


# -- pretraining ---------------------------------------------------------------------------------------
def test_pretraining_runs_and_the_scrubber_looks_back(qtbot, window, wait_run):
    panel = window.pretrain_panel
    window.tabs.setCurrentWidget(panel)
    set_tiny(panel)
    with qtbot.waitSignal(window.session.emulator_changed, timeout=60000) as blocker:
        click(qtbot, panel.start_button)
        assert window.busy and not panel.start_button.isEnabled() and panel.stop_button.isEnabled()
        assert not panel.iterations.isEnabled()   # settings are locked during a run
        if not panel.snapshots:                   # before the first step, the panel says what it is doing
            assert panel.status.text().startswith("starting: simulating the held-out images")
            assert panel.progress.maximum() == TINY
    wait_run(window)
    emulator = blocker.args[0]
    assert emulator is window.session.emulator and emulator.meta["iteration"] == TINY
    assert window.state_label.text() == "finished"
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled() and panel.iterations.isEnabled()

    assert len(panel.snapshots) >= 2 and panel.snapshots[-1].final
    assert panel.progress.maximum() == TINY and panel.progress.value() == TINY
    assert np.array_equal(panel.losses.steps, np.arange(1, TINY + 1)), "every iteration's loss is drawn once"
    assert panel.grid.last_array is not None and panel.grid.last_array.size > 28 * 28
    assert "done: 30 iterations" in panel.status.text()
    assert window.results_panel.emulator_button.isEnabled()

    scrubber = panel.scrubber
    assert scrubber.following and scrubber.label.text().endswith("(live)")
    latest = panel.grid.last_array.copy()
    scrubber.slider.setFocus()
    qtbot.keyClick(scrubber.slider, Qt.Key.Key_Home)   # back to the first snapshot
    assert scrubber.slider.value() == 0
    assert "live" not in scrubber.label.text()
    first = panel.snapshots[0].iteration
    assert f"iteration {first}" in scrubber.label.text()
    assert panel.losses.limit_step == first
    assert panel.grid.last_array.shape[1] < latest.shape[1]   # one emulator column instead of several
    qtbot.keyClick(scrubber.slider, Qt.Key.Key_End)
    assert scrubber.label.text().endswith("(live)") and panel.losses.limit_step is None


def test_continue_after_scrubbing_back_follows_the_new_run(qtbot, window, wait_run):
    panel = window.pretrain_panel
    window.tabs.setCurrentWidget(panel)
    set_tiny(panel)
    click(qtbot, panel.start_button)
    wait_run(window)
    panel.scrubber.slider.setFocus()
    qtbot.keyClick(panel.scrubber.slider, Qt.Key.Key_Home)   # look back at the first snapshot
    assert not panel.scrubber.following and panel.losses.limit_step is not None
    panel.iterations.setValue(2 * TINY)
    click(qtbot, panel.continue_button)
    wait_run(window)
    assert panel.scrubber.following and panel.scrubber.label.text().endswith("(live)")
    assert panel.losses.limit_step is None and panel.losses.steps[-1] == 2 * TINY   # the curves go on, all shown
    assert f"iteration {2 * TINY}" in panel.scrubber.label.text()


def test_pretraining_continues_where_the_last_run_ended(qtbot, window, wait_run):
    panel = window.pretrain_panel
    window.tabs.setCurrentWidget(panel)
    set_tiny(panel)
    assert not panel.continue_button.isEnabled()          # nothing to continue yet
    with qtbot.waitSignal(window.session.emulator_changed, timeout=60000):
        click(qtbot, panel.start_button)
    wait_run(window)
    click(qtbot, panel.continue_button)                   # still 30 iterations asked for: refused, said why
    assert not window.busy
    assert any("already has 30 iterations" in t for t in close_message_boxes(window))
    panel.iterations.setValue(2 * TINY)
    with qtbot.waitSignal(window.session.emulator_changed, timeout=60000) as blocker:
        click(qtbot, panel.continue_button)
    wait_run(window)
    assert blocker.args[0].meta["iteration"] == 2 * TINY
    assert np.array_equal(panel.losses.steps, np.arange(1, 2 * TINY + 1)), "the curves go on, nothing drawn twice"
    assert panel.progress.value() == 2 * TINY and "done: 60 iterations" in panel.status.text()
    # a new emulator from elsewhere cannot be "continued" as if it were this run
    window.session.set_emulator(blocker.args[0], "elsewhere.pt")
    assert not panel.continue_button.isEnabled()


def test_pause_resume_and_stop(qtbot, window, wait_run):
    panel = window.pretrain_panel
    window.tabs.setCurrentWidget(panel)
    set_tiny(panel, iterations=2000)
    click(qtbot, panel.start_button)
    qtbot.waitUntil(lambda: len(panel.losses.steps) > 0, timeout=30000)

    click(qtbot, panel.pause_button)
    qtbot.waitUntil(lambda: window.state_label.text() == "paused", timeout=5000)
    assert panel.pause_button.text() == "Resume" and panel.status.text().endswith("paused")
    # the iteration under way when Pause was clicked may still report; then nothing may come
    held = -1
    for _ in range(10):
        if len(panel.losses.steps) == held:
            break
        held = len(panel.losses.steps)
        qtbot.wait(600)          # longer than the 0.25 s between snapshots of a running job
    else:
        pytest.fail("the paused run kept reporting iterations")
    qtbot.wait(300)
    assert len(panel.losses.steps) == held, "a paused run must not go on"
    assert window.busy and panel.status.text().endswith("paused")

    click(qtbot, panel.pause_button)   # now reads Resume
    assert window.state_label.text() == "running" and panel.pause_button.text() == "Pause"
    qtbot.waitUntil(lambda: len(panel.losses.steps) > held, timeout=30000)

    click(qtbot, panel.stop_button)
    assert window.state_label.text() == "stopping"
    wait_run(window)
    assert window.thread is None and window.worker is None
    assert window.state_label.text() == "stopped"
    emulator = window.session.emulator           # a stopped run keeps what it learned
    assert emulator is not None and held < emulator.meta["iteration"] < 2000
    assert panel.snapshots[-1].final
    assert panel.status.text().startswith("stopped:") and "ready for calibration" not in panel.status.text()


def test_pause_shortcut_and_toolbar_actions(qtbot, window, wait_run):
    panel = window.pretrain_panel
    set_tiny(panel, iterations=2000)
    assert window.tabs.currentWidget() is window.true_panel
    click(qtbot, toolbar_button(window, window.start_action))   # from the first tab: starts pretraining
    assert window.tabs.currentWidget() is panel and window.busy
    assert not toolbar_button(window, window.run_all_action).isEnabled()
    window.toggle_pause()
    assert window.state_label.text() == "paused" and panel.paused
    window.toggle_pause()
    assert window.state_label.text() == "running" and not panel.paused
    click(qtbot, toolbar_button(window, window.stop_action))
    wait_run(window)
    assert toolbar_button(window, window.run_all_action).isEnabled()


# -- calibration and results ---------------------------------------------------------------------------
def test_calibration_needs_an_emulator(qtbot, window):
    window.tabs.setCurrentWidget(window.calibrate_panel)
    click(qtbot, window.calibrate_panel.start_button)
    assert not window.busy
    assert "emulator" in window.last_error
    assert close_message_boxes(window) == [window.last_error]


def test_calibration_fills_the_table(qtbot, calibrated):
    window = calibrated
    panel = window.calibrate_panel
    result = window.session.result
    assert result is not None and window.session.outcome.iteration == TINY
    assert window.state_label.text() == "finished"
    assert len(panel.snapshots) >= 2 and panel.snapshots[-1].final
    assert panel.progress.value() == TINY
    assert np.array_equal(panel.losses.steps, np.arange(1, TINY + 1))
    mean, std = PAPER_TRUTH["lines"]
    for i in range(4):
        cells = [panel.table.item(i, c).text() for c in range(7)]
        values = [float(v) for v in cells]                   # every cell holds a number
        assert values[0] == pytest.approx(result["parameters"][i]["mean"], rel=1e-3)
        assert values[2] == pytest.approx(mean[i], abs=0.05)  # the closure test's true mean
        assert values[3] == pytest.approx(std[i], rel=0.1)
        low, high = (float(v) for v in panel.table.item(i, 7).text().split(" – "))   # the 68% interval
        q = result["parameters"][i]["quantiles"]
        assert low == pytest.approx(q["16"], rel=1e-3) and high == pytest.approx(q["84"], rel=1e-3) and low < high
    assert all(len(h.gen_curve.getData()[1]) == len(h.edges) - 1 for h in panel.histograms)
    key = panel.hist_key.text()                                    # one key above the histograms
    assert "best match" in key and "true (closure test)" in key and "default value" in key
    assert "best match pooled from iterations" in panel.status.text()
    assert "best mean" in window.results_panel.summary.toPlainText()
    assert window.results_panel.correlation.rowCount() == 4
    sims = window.session.result["simulations"]
    assert sims["calibration"] > 0 and sims["total"] == sum(v for k, v in sims.items() if k != "total")
    assert f"simulator images consumed: {sims['total']:,}" in window.results_panel.provenance.toPlainText()
    assert window.results_panel.export_button.isEnabled()


def test_a_budgeted_calibration_shows_what_it_consumed(qtbot, window, wait_run, monkeypatch, tiny_emulator_path):
    load_emulator_by_dialog(qtbot, window, monkeypatch, tiny_emulator_path)
    panel = window.calibrate_panel
    window.tabs.setCurrentWidget(panel)
    assert panel.iterations.value() == 2000  # the quick preset's
    panel.budget_input.setValue(5000)  # a cap switches to the preset's iterations for a budgeted run ...
    assert panel.iterations.value() == 4000
    panel.budget_input.setValue(0)     # ... and no cap back
    assert panel.iterations.value() == 2000
    panel.budget_input.setValue(10)   # below the route's minimum: refused, nothing started
    set_tiny(panel)                   # a changed cap keeps the iterations chosen
    click(qtbot, panel.start_button)
    assert not window.busy and "below the" in window.last_error
    close_message_boxes(window)
    panel.budget_input.setValue(8 * panel.batch.value())
    click(qtbot, panel.start_button)
    qtbot.waitUntil(lambda: window.session.result is not None, timeout=60000)
    wait_run(window)
    sims = window.session.result["simulations"]
    assert 0 < sims["calibration"] <= 8 * panel.batch.value() and sims["result_checks"] == 0
    assert f"{sims['calibration']:,} simulator images of a budget of {8 * panel.batch.value():,}" in \
        panel.describe(panel.snapshots[-1])
    assert "simulation budget" in window.results_panel.provenance.toPlainText()


def test_results_exports(qtbot, calibrated, tmp_path):
    window = calibrated
    results = window.results_panel
    window.tabs.setCurrentWidget(results)
    path = tmp_path / "out" / "result.json"
    with qtbot.waitSignal(results.message, timeout=5000):
        assert results.export_result(str(path))
    csv = samples_path_for(path)
    doc = json.loads(path.read_text())
    assert [p["name"] for p in doc["parameters"]] == ["m", "x0", "c", "x_steps"]
    assert doc["samples_csv"] == csv.name
    lines = csv.read_text().splitlines()
    assert lines[0] == "m,x0,c,x_steps" and len(lines) == 1 + len(window.session.outcome.samples)
    assert str(path) in results.saved.text()

    before = path.read_bytes(), csv.read_bytes()
    assert not results.export_result(str(path))          # no overwrite unless the dialog asked
    assert "already exists" in window.last_error
    assert close_message_boxes(window) == [window.last_error]
    assert (path.read_bytes(), csv.read_bytes()) == before
    assert results.export_result(str(path), overwrite=True)

    pt = tmp_path / "emulator.pt"
    assert results.export_emulator(str(pt))
    again = TrainedEmulator.load(pt)
    assert [p.name for p in again.parameters] == ["m", "x0", "c", "x_steps"]
    pt2 = tmp_path / "emulator.pt2"
    assert results.export_emulator(str(pt2))
    assert pt2.stat().st_size > 1000
    assert str(pt2) in results.saved.text()

    assert results.tunes_button.isEnabled()
    with qtbot.waitSignal(results.message, timeout=5000):
        assert results.export_tunes(str(tmp_path / "tunes"))
    variation = (tmp_path / "tunes" / "axis0_plus.txt").read_text().split()
    assert variation[0::2] == ["m", "x0", "c", "x_steps"]
    assert float(variation[1]) == pytest.approx(window.session.result["eigentunes"][0]["parameters"]["m"])
    assert not results.export_tunes(str(tmp_path / "tunes"))  # files are not replaced unless the dialog asked
    assert "already exists" in window.last_error
    close_message_boxes(window)
    # the image checks of the same result are drawn on their own tab
    checks = window.image_checks_panel
    assert checks.verdict.text().startswith(("✓", "⚠", "No classifier test"))
    assert checks.map_items["pull"].image.shape == (28, 28)

    paths = window.save_pictures(str(tmp_path))
    assert len(paths) == 6 and len(set(paths)) == 6
    for p in paths:
        image = QImage(p)
        assert not image.isNull() and image.width() > 100 and image.height() > 100
    assert window.tabs.currentWidget() is results        # the view the user had is restored


def test_export_without_a_result_says_so(qtbot, window, tmp_path):
    assert not window.results_panel.export_result(str(tmp_path / "r.json"))
    assert "no result" in window.last_error
    assert close_message_boxes(window) == [window.last_error]
    assert not (tmp_path / "r.json").exists()


def test_run_all_pretrains_then_calibrates(qtbot, window, wait_run):
    set_tiny(window.pretrain_panel)
    set_tiny(window.calibrate_panel)
    stages = []
    window.session.emulator_changed.connect(lambda e: stages.append(("emulator", window.calibrate_panel.running)))
    startable_at_handover = []
    window.tabs.currentChanged.connect(lambda _: startable_at_handover.append(
        (window.pretrain_panel.start_button.isEnabled(), window.pretrain_panel.continue_button.isEnabled())))
    click(qtbot, toolbar_button(window, window.run_all_action))
    assert window.tabs.currentWidget() is window.pretrain_panel and window.pretrain_panel.running
    qtbot.waitUntil(lambda: window.session.result is not None, timeout=90000)
    wait_run(window)
    assert stages == [("emulator", False)]
    assert window.tabs.currentWidget() is window.calibrate_panel
    assert startable_at_handover[-1] == (False, False)  # while calibrating, pretraining cannot be started
    assert window.session.emulator.meta["iteration"] == TINY and window.session.outcome.iteration == TINY
    assert window.pretrain_panel.snapshots[-1].final and window.calibrate_panel.snapshots[-1].final
    # one job: the calibration ran through the emulator the pretraining made, and both panels are idle
    assert window.session.result["emulator"]["iterations"] == TINY
    assert not window.pretrain_panel.running and not window.calibrate_panel.running


def test_run_all_while_busy_is_refused_and_does_not_chain(qtbot, window, wait_run):
    panel = window.pretrain_panel
    window.tabs.setCurrentWidget(panel)
    set_tiny(panel, iterations=2000)
    click(qtbot, panel.start_button)
    qtbot.waitUntil(lambda: len(panel.snapshots) > 0, timeout=30000)
    kept = len(panel.snapshots)
    window.run_all()                                    # e.g. Ctrl+Shift+R during the run
    assert "in progress" in window.last_error
    assert close_message_boxes(window) == [window.last_error]
    assert len(panel.snapshots) >= kept                 # the running panel was not reset
    click(qtbot, panel.stop_button)
    wait_run(window)
    assert not window.calibrate_panel.snapshots and window.session.result is None


# -- closing -------------------------------------------------------------------------------------------
def test_closing_during_a_run_stops_it(qtbot, window, monkeypatch, settings_path):
    panel = window.pretrain_panel
    window.tabs.setCurrentWidget(panel)
    set_tiny(panel, iterations=2000)
    click(qtbot, panel.start_button)
    qtbot.waitUntil(lambda: len(panel.snapshots) > 0, timeout=30000)
    thread = window.thread
    finished = []
    thread.finished.connect(lambda: finished.append(True))

    asked = []
    window.ask_before_losing_work = lambda question: asked.append(question) or "cancel"
    assert not window.close()                          # Cancel: the window and the run go on
    assert window.isVisible() and window.busy and len(asked) == 1
    window.ask_before_losing_work = lambda question: asked.append(question) or "discard"
    assert window.close()
    assert len(asked) == 2 and not window.isVisible()
    # waited for, not destroyed while running (a finished thread may already be deleted: deleteLater ran)
    assert not shiboken6.isValid(thread) or (thread.isFinished() and not thread.isRunning())
    qtbot.waitUntil(lambda: finished == [True], timeout=5000)
    settings = QSettings(str(settings_path), QSettings.Format.IniFormat)
    assert settings.value("geometry") is not None        # the window state was saved to the test's file


def test_settings_restore_folders(qtbot, make_window, tmp_path, settings_path):
    settings = QSettings(str(settings_path), QSettings.Format.IniFormat)
    settings.setValue("folders/export", str(tmp_path))
    settings.setValue("folders/true", str(tmp_path / "missing"))
    settings.sync()
    window = make_window()
    assert window.results_panel.last_folder == str(tmp_path)
    assert window.true_panel.last_folder != str(tmp_path / "missing")   # folders that are gone are ignored


# -- projects ------------------------------------------------------------------------------------------
def test_save_and_reopen_a_project(qtbot, calibrated, make_window, tmp_path):
    window = calibrated
    path = tmp_path / "run.magan"
    assert window.save_project(str(path))
    other = make_window()
    other.true_panel.select_simulator("circles")          # a different state that the project replaces
    assert other.open_project(str(path))
    s, old = other.session, window.session
    assert s.simulator_spec == "lines" and s.true.sha256 == old.true.sha256
    np.testing.assert_array_equal(s.outcome.samples, old.outcome.samples)
    assert s.result == json.loads(json.dumps(old.result))
    assert s.emulator is not None and other.results_panel.export_button.isEnabled()
    panel = other.calibrate_panel
    np.testing.assert_array_equal(panel.losses.steps, window.calibrate_panel.losses.steps)
    assert float(panel.table.item(0, 0).text()) == pytest.approx(old.result["parameters"][0]["mean"], rel=1e-3)
    assert panel.iterations.value() == TINY
    assert "best mean" in other.results_panel.summary.toPlainText()
    # the reopened calibration continues where it ended; the emulator was loaded, not trained, here
    assert not other.pretrain_panel.continue_button.isEnabled()
    panel.iterations.setValue(2 * TINY)
    other.tabs.setCurrentWidget(panel)
    click(qtbot, panel.continue_button)
    qtbot.waitUntil(lambda: s.result is not None and s.result["calibration"]["iterations"] == 2 * TINY
                    and not other.busy, timeout=60000)
    assert panel.losses.steps[-1] == 2 * TINY
    assert np.array_equal(panel.losses.steps[:TINY], window.calibrate_panel.losses.steps)
    # and a fresh calibration still starts from nothing
    calibrate(qtbot, other, lambda w: qtbot.waitUntil(lambda: not w.busy, timeout=60000))


def test_a_bad_project_is_refused_and_nothing_is_lost(qtbot, window, tmp_path):
    path = tmp_path / "broken.magan"
    path.write_bytes(b"not a project")
    before = window.session.true
    assert not window.open_project(str(path))
    assert window.session.true is before
    assert "broken.magan" in window.last_error
    close_message_boxes(window)


def test_a_long_run_keeps_a_bounded_evenly_thinned_set_of_snapshots(window, monkeypatch):
    """Every snapshot's metrics stay, but images and samples only of at most MAX_KEPT_SNAPSHOTS."""
    import magan_gui.gui.panels.run_panel as run_panel_module
    from magan_gui.core.progress import PretrainSnapshot

    monkeypatch.setattr(run_panel_module, "MAX_KEPT_SNAPSHOTS", 8)
    panel = window.pretrain_panel

    def snap(i: int) -> PretrainSnapshot:
        return PretrainSnapshot("pretrain", i, 100, 0.0, 0.0, 1.0, np.array([i]), {"pixel_mse": np.array([1.0 / i])},
                                fidelity_mse=1.0 / i, fidelity_iteration=i, emulated=np.zeros((2, 28, 28), np.float32),
                                simulated=np.ones((2, 28, 28), np.float32), grid_params=np.zeros((2, 4), np.float32))

    for i in range(1, 9):
        panel.on_snapshot(snap(i))
    panel.scrubber.slider.setValue(4)                  # the user looks back at iteration 5 ...
    for i in range(9, 31):
        panel.on_snapshot(snap(i))
    kept = [s.iteration for s in panel.snapshots]
    assert len(kept) <= 8 and kept[0] == 1 and kept[-1] == 30 and kept == sorted(kept)
    assert panel.scrubber.iterations == kept
    assert abs(panel.scrubber.iterations[panel.scrubber.slider.value()] - 5) <= 4  # ... and stays near it
    assert [m[0] for m in panel.history()["metrics"]] == list(range(1, 31))   # no metrics lost
    assert np.array_equal(panel.losses.steps, np.arange(1, 31))


def test_a_plugin_is_loaded_in_the_worker_and_a_broken_one_leaves_the_simulator_alone(qtbot, window, monkeypatch,
                                                                                     tmp_path, wait_run):
    broken = tmp_path / "broken.py"
    broken.write_text("from magan_gui import Parameter\n\nclass Sim:\n    image_shape = (16, 16)\n"
                      "    parameters = [Parameter('a', 0.0, 1.0)]\n\n    def simulate(self, params):\n"
                      "        raise RuntimeError('no licence server')\n")
    monkeypatch.setattr(true_images_module.QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(broken), "")))
    box = window.true_panel.simulator_box
    box.setCurrentIndex(box.findText(true_images_module.PLUGIN_ITEM))
    box.activated.emit(box.currentIndex())              # as a person picking "plugin file…"
    assert window.busy                                  # checked in the worker, not on the GUI thread
    wait_run(window)
    assert "no licence server" in window.last_error and close_message_boxes(window) == [window.last_error]
    assert window.session.simulator_spec == "lines" and box.currentText() == "lines"

    good = REPO_ROOT / "scripts" / "slow_plugin.py"
    monkeypatch.setenv("MAGAN_SLOW_SECONDS", "0.05")
    monkeypatch.setattr(true_images_module.QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(good), "")))
    with qtbot.waitSignal(window.session.simulator_changed, timeout=30000):
        box.setCurrentIndex(box.findText(true_images_module.PLUGIN_ITEM))
        box.activated.emit(box.currentIndex())
        assert window.busy
    wait_run(window)
    assert window.session.simulator.name == "slow-blob" and box.currentText() == f"{good}:SlowBlob"


def test_switching_the_simulator_keeps_data_without_parameters_and_says_so(qtbot):
    from magan_gui.core.data import TrueImages
    from magan_gui.core.simulators import load_simulator
    from magan_gui.gui.session import Session

    session = Session()
    data = TrueImages(np.random.default_rng(0).random((20, 28, 28)).astype(np.float32), None, None, "data", "0" * 64)
    session.set_true(data)
    with qtbot.waitSignal(session.notice) as said:
        session.set_simulator(load_simulator("circles"), "circles")
    assert session.true is data and "true images kept for circles" in said.args[0]
    with qtbot.waitSignal(session.notice) as said:
        session.set_simulator(load_simulator("magan_gui/examples/shower_plugin.py:Shower"), "shower")
    assert session.true is None and "they are 28x28, shower makes 20x48" in said.args[0]


def test_a_fresh_window_is_ready_names_its_device_and_a_good_load_clears_an_old_error(qtbot, window, wait_run):
    assert window.state_label.text() == "ready"                       # the start-up images are no finished run
    assert window.device_label.text() == "device: cpu (CPU)"
    assert not window.pause_action.isEnabled() and not window.stop_action.isEnabled()
    window.show_error("an old problem")
    assert close_message_boxes(window) == ["an old problem"]
    assert window.statusBar().currentMessage() == "an old problem"
    window.true_panel.generate()
    wait_run(window)
    assert window.statusBar().currentMessage() != "an old problem" and window.state_label.text() == "ready"


def test_run_settings_are_remembered_per_simulator_across_restarts(qtbot, make_window):
    window = make_window()
    window.pretrain_panel.iterations.setValue(777)
    window.calibrate_panel.iterations.setValue(1234)
    window.calibrate_panel.seed.setValue(5)
    assert window.close()
    again = make_window()
    assert again.pretrain_panel.iterations.value() == 777
    assert again.calibrate_panel.iterations.value() == 1234 and again.calibrate_panel.seed.value() == 5
    again.true_panel.select_simulator("circles")        # another simulator keeps its own (the preset's)
    assert again.calibrate_panel.iterations.value() != 1234


def test_a_reopened_stopped_run_shows_how_far_it_got(qtbot, make_window, wait_run, tmp_path):
    window = make_window()
    panel = window.pretrain_panel
    window.tabs.setCurrentWidget(panel)
    set_tiny(panel, 100000)
    click(qtbot, panel.start_button)
    qtbot.waitUntil(lambda: panel.progress.value() >= 5, timeout=60000)
    click(qtbot, panel.stop_button)
    wait_run(window)
    reached = int(panel.losses.steps[-1])
    assert window.save_project(str(tmp_path / "stopped.magan"))
    other = make_window()
    assert other.open_project(str(tmp_path / "stopped.magan"))
    bar = other.pretrain_panel.progress
    assert bar.maximum() == 100000 and bar.value() == reached          # 'reached / 100000', not a full bar


def test_a_diverging_pretraining_says_so_and_keeps_a_finite_emulator(qtbot, window, wait_run, tmp_path):
    preset = tmp_path / "hot.toml"
    preset.write_text("[pretrain]\nlr_emulator = 1e6\n")
    window.session.preset = str(preset)
    texts = pretrain_until_it_fails(qtbot, window, wait_run)
    assert len(texts) == 1 and "diverged" in texts[0] and "NaN or infinite" in texts[0]
    panel = window.pretrain_panel
    assert panel.status.text() == "diverged before it learnt anything: no emulator was kept"
    assert window.session.emulator is None and panel.start_button.isEnabled()


def pretrain_until_it_fails(qtbot, window, wait_run) -> list[str]:
    """Start a tiny pretraining that is to fail; return the error boxes' texts (closed, as OK clicks)."""
    panel = window.pretrain_panel
    window.tabs.setCurrentWidget(panel)
    set_tiny(panel)
    click(qtbot, panel.start_button)
    qtbot.waitUntil(lambda: not window.busy, timeout=60000)
    wait_run(window)
    assert window.state_label.text() == "failed"
    return close_message_boxes(window)


def test_out_of_memory_in_a_run_leaves_a_usable_window(qtbot, window, wait_run, monkeypatch):
    from magan_gui.core.pretraining import Pretrainer

    def no_memory(self):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(Pretrainer, "step", no_memory)
    texts = pretrain_until_it_fails(qtbot, window, wait_run)
    assert len(texts) == 1 and "ran out of" in texts[0] and "batch size (now 16)" in texts[0]
    monkeypatch.undo()  # memory again: the same window runs the next pretraining to its end
    with qtbot.waitSignal(window.session.emulator_changed, timeout=60000):
        click(qtbot, window.pretrain_panel.start_button)
    wait_run(window)
    assert window.state_label.text() == "finished"
