"""The emulator explorer, driven as a person would: sliders moved and let go, buttons clicked, the images read."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDockWidget, QTextBrowser, QWidget

from magan_gui.core.calibration import CalibrationOutcome
from magan_gui.core.emulator import TrainedEmulator
from magan_gui.core.pretraining import Pretrainer
from magan_gui.core.simulators import LoadedSimulator
from magan_gui.gui.panels.explorer import BUSY_TIP, NO_EMULATOR, STEPS, EmulatorExplorer
from magan_gui.gui.session import Session
from tests.conftest import tiny_pretrain_config

from .conftest import flush_events

LEFT = Qt.MouseButton.LeftButton
MEANS, STDS = (1.5, 10.0, 0.5, 9.0), (0.3, 0.5, 0.1, 0.5)   # a best match for lines


# -- helpers -------------------------------------------------------------------------------------------
def click(qtbot, button) -> None:
    """Click ``button`` as a person would (it must be shown and enabled)."""
    assert button.isVisible() and button.isEnabled(), f"{button.text()!r} cannot be clicked now"
    qtbot.mouseClick(button, LEFT)


def drag(control, position: int) -> None:
    """Press a slider's handle, move it to ``position`` and let go, as a mouse drag does."""
    control.slider.setSliderDown(True)
    control.slider.setValue(position)
    control.slider.setSliderDown(False)


def emulated(emulator: TrainedEmulator, values, noise=None) -> np.ndarray:
    """The emulator's image at ``values``, computed here."""
    return emulator.simulate(torch.tensor(np.asarray(values, dtype=np.float32)[None]), noise)[0].numpy()


def simulated(simulator: LoadedSimulator, values) -> np.ndarray:
    """The simulator's image at ``values``, computed here."""
    return simulator.simulate(torch.tensor(np.asarray(values, dtype=np.float32)[None]))[0].numpy()


def fake_result(names, samples: np.ndarray) -> tuple[CalibrationOutcome, dict]:
    """A calibration's outcome and result document, with MEANS and STDS as the best match."""
    rows = [{"name": n, "unit": "", "mean": m, "std": s, "default": 0.0} for n, m, s in zip(names, MEANS, STDS)]
    return CalibrationOutcome(samples, 10, [10], 0.1, 1.0), {"simulator": "lines", "parameters": rows}


class SlowSimulator:
    """The lines parameters; each image waits until the test lets it go, and is filled with its m."""

    name = "slow"
    image_shape = (28, 28)
    stochastic = False

    def __init__(self, parameters):
        self.parameters = parameters
        self.go = threading.Event()
        self.calls: list[float] = []

    def simulate(self, params):
        self.go.wait(30)
        self.calls.append(float(params[0, 0]))
        return torch.full((len(params), 28, 28), float(params[0, 0]) / 4)


class BrokenSimulator(SlowSimulator):
    """A plugin whose every call raises."""

    def simulate(self, params):
        raise ValueError("detector geometry file not found")


# -- fixtures ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def circles_emulator_path(circles, tmp_path_factory):
    """A (rough) circles emulator fed the simulator's noise image, from a few iterations."""
    path = tmp_path_factory.mktemp("explorer") / "circles_emulator.pt"
    Pretrainer(circles, tiny_pretrain_config(iterations=10, mode="pixel", eval_every=10), "cpu").run(
        checkpoint_path=path)
    return path


@pytest.fixture()
def session(lines) -> Session:
    """A session on the lines simulator."""
    s = Session()
    s.set_simulator(lines, "lines")
    return s


@pytest.fixture()
def make_explorer(qtbot):
    """Build explorers of a session, shown at a dock's size."""

    def make(session: Session) -> EmulatorExplorer:
        explorer = EmulatorExplorer(session)
        qtbot.addWidget(explorer)
        explorer.resize(460, 720)
        explorer.show()
        qtbot.waitExposed(explorer)
        return explorer

    return make


@pytest.fixture()
def explorer(make_explorer, session, tiny_emulator, qtbot) -> EmulatorExplorer:
    """An explorer of the tiny lines emulator beside the lines simulator, its first images drawn."""
    session.set_emulator(tiny_emulator)
    e = make_explorer(session)
    qtbot.waitUntil(lambda: e.emulator_image is not None and e.simulator_image is not None, timeout=10000)
    return e


# -- tests ---------------------------------------------------------------------------------------------
def test_without_an_emulator_the_explorer_says_how_to_get_one(qtbot, make_explorer, session, tiny_emulator):
    e = make_explorer(session)
    assert e.stack.currentWidget() is e.empty_label and e.empty_label.isVisible()
    assert e.empty_label.text() == NO_EMULATOR and "Pretraining" in NO_EMULATOR and "Load emulator" in NO_EMULATOR
    assert e.controls == []

    session.set_emulator(tiny_emulator)
    qtbot.waitUntil(lambda: e.emulator_image is not None)
    assert not e.empty_label.isVisible() and e.simulate_button.isVisible()
    session.set_emulator(None)
    assert e.empty_label.isVisible() and e.controls == []


def test_one_slider_per_parameter_in_physical_units_with_its_range_and_default(explorer, lines):
    assert [c.parameter.name for c in explorer.controls] == [p.name for p in lines.parameters]
    for control, p in zip(explorer.controls, lines.parameters):
        assert control.isVisible()
        assert (control.slider.minimum(), control.slider.maximum()) == (0, STEPS)
        assert control.value == pytest.approx(p.default)
        assert control.low_label.text() == f"{p.low:g}" and control.high_label.text() == f"{p.high:g}"
        assert p.name in control.name_label.text() and (p.unit in control.name_label.text())
        assert "default" in control.key_label.text() and "best" not in control.key_label.text()
        assert set(control.slider.marks) == {"default"}
    x0 = explorer.controls[1]
    assert x0.value_label.text() == "9.000 px"
    drag(x0, STEPS)   # to the top of its range
    assert x0.value == pytest.approx(14.0) and x0.value_label.text() == "14.000 px"


def test_moving_a_slider_redraws_the_emulator_at_the_new_values(qtbot, explorer, tiny_emulator):
    before, draws = explorer.emulator_image.copy(), explorer.draw_count
    np.testing.assert_allclose(before, emulated(tiny_emulator, [p.default for p in tiny_emulator.parameters]),
                               atol=1e-6)
    with qtbot.waitSignal(explorer.drawn, timeout=5000):
        explorer.controls[0].slider.setValue(STEPS)        # m to 2.5
    assert explorer.draw_count == draws + 1
    assert explorer.values()[0] == pytest.approx(2.5)
    np.testing.assert_allclose(explorer.emulator_image, emulated(tiny_emulator, explorer.values()), atol=1e-6)
    assert np.abs(explorer.emulator_image - before).max() > 0.05
    np.testing.assert_allclose(explorer.emulator_item.image, explorer.emulator_image)   # what the screen shows
    assert tuple(explorer.emulator_item.levels) == (0.0, 1.0)


def test_slider_moves_faster_than_draws_are_coalesced_into_one_draw_of_the_latest(qtbot, explorer, tiny_emulator):
    draws = explorer.draw_count
    slider = explorer.controls[1].slider
    slider.setSliderDown(True)
    for position in range(0, STEPS + 1, 20):          # 51 moves within one pass of the event loop
        slider.setValue(position)
    slider.setSliderDown(False)
    qtbot.waitUntil(lambda: explorer.draw_count > draws, timeout=5000)
    flush_events()   # the event loop runs on: no backlog of the earlier moves follows
    assert explorer.draw_count == draws + 1
    np.testing.assert_allclose(explorer.emulator_image, emulated(tiny_emulator, explorer.values()), atol=1e-6)


def test_simulate_shows_the_simulator_image_and_the_difference(qtbot, explorer, lines, tiny_emulator):
    explorer.on_release_box.setChecked(False)
    explorer.controls[0].slider.setValue(800)          # m = 2.1
    qtbot.waitUntil(lambda: explorer.emulator_image is not None and explorer.draw_count > 1, timeout=5000)
    assert not explorer.simulation_is_current()
    assert "earlier values" in explorer.simulation_label.text()
    assert "earlier" in explorer.image_titles[1].text

    with qtbot.waitSignal(explorer.simulated, timeout=10000):
        click(qtbot, explorer.simulate_button)
    values = explorer.values()
    assert values[0] == pytest.approx(2.1)
    np.testing.assert_allclose(explorer.simulator_image, simulated(lines, values), atol=1e-6)
    np.testing.assert_allclose(explorer.difference, emulated(tiny_emulator, values) - simulated(lines, values),
                               atol=1e-5)
    np.testing.assert_allclose(explorer.simulator_item.image, explorer.simulator_image)
    low, high = explorer.difference_item.levels
    assert low == pytest.approx(-high) and high >= np.abs(explorer.difference).max() - 1e-6   # symmetric scale
    assert explorer.simulation_is_current()
    assert "for these values" in explorer.simulation_label.text()
    assert explorer.image_titles[1].text == "simulator"


def test_simulate_on_release_waits_for_the_slider_to_be_let_go(qtbot, explorer, lines):
    assert explorer.on_release_box.isChecked()   # on by default for a built-in simulator
    slider = explorer.controls[3].slider
    slider.setSliderDown(True)
    slider.setValue(0)
    qtbot.waitUntil(lambda: explorer.values()[3] == pytest.approx(6.0) and explorer.draw_count > 1)
    assert explorer._running is None and not explorer.simulation_is_current()   # held: nothing simulated yet
    with qtbot.waitSignal(explorer.simulated, timeout=10000):
        slider.setSliderDown(False)
    assert explorer.simulated_values[3] == pytest.approx(6.0)
    np.testing.assert_allclose(explorer.simulator_image, simulated(lines, explorer.values()), atol=1e-6)

    explorer.on_release_box.setChecked(False)
    drag(explorer.controls[3], STEPS)
    qtbot.waitUntil(lambda: explorer.values()[3] == pytest.approx(12.0) and not explorer.simulation_is_current())
    assert explorer._running is None   # off: the user asks with Simulate


def test_a_slow_simulator_runs_beside_the_sliders_and_its_overtaken_answers_are_dropped(
        qtbot, make_explorer, lines, tiny_emulator):
    slow = SlowSimulator(lines.parameters)
    session = Session()
    session.set_simulator(LoadedSimulator(slow, "slow.py:SlowSimulator"), "slow.py:SlowSimulator")
    session.set_emulator(tiny_emulator)
    e = make_explorer(session)
    assert not e.on_release_box.isChecked()   # a plugin is simulated on request only
    e.on_release_box.setChecked(True)
    try:
        drag(e.controls[0], 0)            # m = 0.5: the simulator starts and hangs
        assert e._running is not None and "simulating…" in e.simulation_label.text()
        drag(e.controls[0], 500)          # m = 1.5: waits
        drag(e.controls[0], STEPS)        # m = 2.5: replaces the waiting request
        assert "then the newer values" in e.simulation_label.text()
        draws = e.draw_count
        qtbot.waitUntil(lambda: e.draw_count > draws, timeout=5000)   # the emulator follows meanwhile
        np.testing.assert_allclose(e.emulator_image, emulated(tiny_emulator, e.values()), atol=1e-6)
    finally:
        with qtbot.waitSignal(e.simulated, timeout=10000):
            slow.go.set()
    assert slow.calls == [pytest.approx(0.5), pytest.approx(2.5)]   # m = 1.5 was overtaken before it ran
    assert e.simulated_values[0] == pytest.approx(2.5) and e.simulation_is_current()
    np.testing.assert_allclose(e.simulator_image, 2.5 / 4)          # the m = 0.5 answer was dropped, not shown


def test_a_failing_simulator_is_said_in_one_sentence(qtbot, make_explorer, lines, tiny_emulator):
    session = Session()
    session.set_simulator(LoadedSimulator(BrokenSimulator(lines.parameters), "broken.py:B"), "broken.py:B")
    session.set_emulator(tiny_emulator)
    e = make_explorer(session)
    with qtbot.waitSignal(e.simulation_failed, timeout=10000):
        click(qtbot, e.simulate_button)
    assert "detector geometry file not found" in e.simulation_label.text()
    assert e.simulator_image is None and e.emulator_image is not None


def test_best_match_sample_and_default_set_the_sliders(qtbot, explorer, session, lines):
    assert not explorer.best_button.isEnabled()        # no calibration yet
    click(qtbot, explorer.sample_button)               # a uniform draw over the box
    for value, p in zip(explorer.values(), lines.parameters):
        assert p.low <= value <= p.high

    samples = np.random.default_rng(3).normal(MEANS, STDS, (50, 4)).clip([p.low for p in lines.parameters],
                                                                         [p.high for p in lines.parameters])
    session.set_result(*fake_result([p.name for p in lines.parameters], samples))
    for control, mean in zip(explorer.controls, MEANS):
        assert "best" in control.key_label.text() and f"{mean:.3f}" in control.key_label.text()
        assert control.slider.marks["best"][0] == control.position_of(mean)
    with qtbot.waitSignal(explorer.simulated, timeout=10000):     # simulate on release: a button is a release
        click(qtbot, explorer.best_button)
    np.testing.assert_allclose(explorer.values(), MEANS)           # exactly, between slider steps or not
    np.testing.assert_allclose(explorer.simulated_values, MEANS)

    click(qtbot, explorer.sample_button)
    assert any(np.allclose(explorer.values(), row) for row in samples)
    click(qtbot, explorer.default_button)
    np.testing.assert_allclose(explorer.values(), [p.default for p in lines.parameters])

    session.set_result(None, None)
    assert not explorer.best_button.isEnabled() and "best" not in explorer.controls[0].key_label.text()


def test_a_stochastic_emulator_keeps_its_draw_while_the_sliders_move(qtbot, make_explorer, circles,
                                                                    circles_emulator_path):
    emulator = TrainedEmulator.load(circles_emulator_path)
    assert emulator.stochastic and emulator.net.noise_image
    session = Session()
    session.set_simulator(circles, "circles")
    session.set_emulator(emulator)
    e = make_explorer(session)
    qtbot.waitUntil(lambda: e.simulator_image is not None, timeout=10000)
    assert [c.parameter.name for c in e.controls] == ["x0", "y0", "r", "n", "b"]
    assert e.new_draw_button.isVisible()
    first, first_sim = e.emulator_image.copy(), e.simulator_image.copy()
    # the simulator's draws are the emulator's: the images and the difference belong together
    noise = e._emulator_noise
    np.testing.assert_allclose(first_sim, circles.simulate(torch.tensor(e.values()[None], dtype=torch.float32),
                                                           noise)[0].numpy(), atol=1e-6)

    drag(e.controls[2], STEPS)
    qtbot.waitUntil(lambda: e.simulated_values is not None and e.simulated_values[2] == pytest.approx(11.0),
                    timeout=10000)
    with qtbot.waitSignal(e.simulated, timeout=10000):
        click(qtbot, e.default_button)                 # back where it started: the very same images
    np.testing.assert_allclose(e.emulator_image, first, atol=1e-6)
    np.testing.assert_allclose(e.simulator_image, first_sim, atol=1e-6)

    with qtbot.waitSignal(e.simulated, timeout=10000):
        click(qtbot, e.new_draw_button)
    assert np.abs(e.simulator_image - first_sim).max() > 0.05      # another draw of the noise
    assert np.abs(e.emulator_image - first).max() > 1e-4


def test_another_emulator_rebuilds_the_sliders_and_drops_the_old_simulation(qtbot, explorer, session,
                                                                           circles_emulator_path):
    assert explorer.simulator_image is not None
    session.set_emulator(TrainedEmulator.load(circles_emulator_path))   # the lines simulator stays
    assert [c.parameter.name for c in explorer.controls] == ["x0", "y0", "r", "n", "b"]
    assert explorer.simulator_image is None and explorer.simulator_item.image is None
    assert not explorer.simulate_button.isEnabled()
    assert "are not the emulator's" in explorer.simulate_button.toolTip()
    assert "are not the emulator's" in explorer.simulation_label.text()
    qtbot.waitUntil(lambda: explorer.emulator_image is not None and explorer.draw_count > 1)


def test_the_window_docks_the_explorer_hidden_under_view_and_disables_simulate_during_a_run(
        qtbot, window, tiny_emulator, wait_run):
    explorer = window.findChild(QWidget, "emulatorExplorer")
    assert isinstance(explorer, EmulatorExplorer)
    dock = explorer.parentWidget()
    assert isinstance(dock, QDockWidget) and not dock.isVisible()
    view = next(a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == "View")
    action = next(a for a in view.actions() if a.text().replace("&", "") == "Emulator explorer")
    assert action.shortcut() == QKeySequence("Ctrl+Shift+X") and action.statusTip()
    action.trigger()
    qtbot.waitExposed(explorer)
    assert dock.isVisible() and explorer.empty_label.isVisible()
    assert explorer.width() >= 360 and window.tabs.width() >= 600   # beside the panels, not over them

    window.session.set_emulator(tiny_emulator)
    qtbot.waitUntil(lambda: explorer.simulator_image is not None, timeout=10000)
    assert explorer.simulate_button.isEnabled()
    go = threading.Event()
    window.run_job(window.pretrain_panel, lambda observe, control: go.wait(30))
    try:
        assert window.busy and not explorer.simulate_button.isEnabled()
        assert explorer.simulate_button.toolTip() == BUSY_TIP
        draws = explorer.draw_count
        drag(explorer.controls[0], 0)                   # the emulator still follows; the simulator waits
        qtbot.waitUntil(lambda: explorer.draw_count > draws, timeout=5000)
        assert explorer._running is None and "when the run ends" in explorer.simulation_label.text()
        assert not explorer.simulation_is_current()
    finally:
        go.set()
        wait_run(window)
    assert explorer.simulate_button.isEnabled()
    action.trigger()
    assert not dock.isVisible()

    window.show_quick_start()
    text = window.quick_start_dialog.findChild(QTextBrowser).toPlainText()
    for words in ("View ▸ Emulator explorer", "Ctrl+Shift+X", "Simulate", "Best match", "Sample", "Default"):
        assert words in text, words
    window.quick_start_dialog.close()
