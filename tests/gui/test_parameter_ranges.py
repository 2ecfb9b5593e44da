"""The simulator's parameter ranges edited in the app: a table of low/high boxes on the True images panel."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox

from .conftest import close_message_boxes

LEFT = Qt.MouseButton.LeftButton


def _open_ranges(qtbot, window):
    panel = window.true_panel
    window.tabs.setCurrentWidget(panel)
    qtbot.mouseClick(panel.ranges_button, LEFT)
    dialog = panel.ranges_dialog
    assert dialog is not None and dialog.isVisible()
    return dialog


def _press(qtbot, dialog, which) -> None:
    qtbot.mouseClick(dialog.findChild(QDialogButtonBox).button(which), LEFT)


def test_new_ranges_load_the_simulator_with_them_and_drop_the_emulator(qtbot, window, tiny_emulator):
    window.session.set_emulator(tiny_emulator)
    dialog = _open_ranges(qtbot, window)
    assert dialog.boxes["m"][0].value() == 0.5 and dialog.boxes["m"][1].value() == 2.5   # the plugin's own
    dialog.boxes["m"][0].setValue(1.0)
    dialog.boxes["m"][1].setValue(2.0)
    with qtbot.waitSignal(window.session.simulator_changed, timeout=30000):
        _press(qtbot, dialog, QDialogButtonBox.StandardButton.Ok)
    simulator = window.session.simulator
    assert window.session.simulator_spec == "lines@m=1:2"
    assert (simulator.parameters[0].low, simulator.parameters[0].high) == (1.0, 2.0)
    assert window.true_panel.simulator_box.currentText() == "lines@m=1:2"
    assert window.session.emulator is None   # trained for the old ranges
    assert window.session.true is not None   # the images are data: they stay
    # the simulator's own ranges, one click away
    dialog = _open_ranges(qtbot, window)
    assert dialog.boxes["m"][0].value() == 1.0
    _press(qtbot, dialog, QDialogButtonBox.StandardButton.RestoreDefaults)
    with qtbot.waitSignal(window.session.simulator_changed, timeout=30000):
        _press(qtbot, dialog, QDialogButtonBox.StandardButton.Ok)
    assert window.session.simulator_spec == "lines" and window.session.simulator.parameters[0].low == 0.5


def test_a_range_whose_low_is_not_below_its_high_is_refused(qtbot, window):
    dialog = _open_ranges(qtbot, window)
    dialog.boxes["c"][0].setValue(0.9)
    dialog.boxes["c"][1].setValue(0.1)
    _press(qtbot, dialog, QDialogButtonBox.StandardButton.Ok)
    texts = close_message_boxes(window)
    assert len(texts) == 1 and "c (0.9 is not below 0.1)" in texts[0]
    assert window.session.simulator_spec == "lines"
