"""app.build_window: what ``magan-gui --simulator ... --true ... --emulator ...`` opens on."""

from __future__ import annotations

import pytest

from magan_gui.bench.paper import PAPER_TRUTH
from magan_gui.core.data import make_closure_set
from magan_gui.core.pretraining import emulator_verdict

from ..conftest import BLOB_PLUGIN, LINES_MEAN, LINES_STD, REPO_ROOT
from .conftest import close_message_boxes, open_message_boxes


def test_plugin_simulator(make_window, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    window = make_window(simulator="magan_gui/examples/blob_plugin.py:Blob")
    session = window.session
    assert session.simulator.name == "blob" and tuple(session.simulator.image_shape) == (32, 32)
    assert session.simulator_spec == "magan_gui/examples/blob_plugin.py:Blob"
    assert window.true_panel.simulator_box.currentText() == session.simulator_spec
    assert window.true_panel.param_table.rowCount() == 4
    assert session.true.shape == (32, 32) and len(session.true) == 10000   # a closure test with the defaults
    assert session.true.params.mean(axis=0) == pytest.approx([p.default for p in session.simulator.parameters],
                                                             abs=0.05)
    assert "32x32" in window.true_panel.simulator_info.text()
    assert BLOB_PLUGIN.is_file()


def test_true_images_from_a_file(make_window, tmp_path, lines):
    path = tmp_path / "true.npz"
    make_closure_set(lines, LINES_MEAN, LINES_STD, 64, seed=3).save_npz(path)
    window = make_window(true=str(path))
    true = window.session.true
    assert true.source == str(path) and len(true) == 64 and true.params.shape == (64, 4)
    assert true.param_names == ["m", "x0", "c", "x_steps"]
    assert "<b>64</b>" in window.true_panel.info.text()
    assert window.true_panel.histogram.plotItem.titleLabel.text.startswith("pixel intensities (64 images)")
    assert not window.busy and window.thread is None     # nothing was generated


def test_emulator_from_a_file(make_window, tiny_emulator_path):
    window = make_window(emulator=str(tiny_emulator_path))
    assert window.session.emulator is not None and window.session.emulator_path == str(tiny_emulator_path)
    assert window.results_panel.emulator_button.isEnabled()
    fidelity = window.session.emulator.meta["fidelity_mse"]
    status = window.pretrain_panel.status.text()
    assert f"held-out pixel MSE {fidelity:.5f} is " in status                  # 5 decimals, not 17 digits
    verdict, sentence = emulator_verdict(window.session.emulator.meta)          # judged against a blind guess
    assert sentence in status and verdict in ("good", "rough", "poor")
    warning = window.calibrate_panel.emulator_warning                           # said before calibrating
    assert (not warning.isHidden()) == (verdict != "good") and (verdict == "good" or sentence in warning.text())


def test_a_bad_simulator_falls_back_to_lines(make_window):
    window = make_window(simulator="no/such/file.py:Nope")
    assert window.session.simulator_spec == "lines" and window.session.simulator.name == "lines"
    assert window.true_panel.simulator_box.currentText() == "lines"
    assert "no/such/file.py" in window.last_error and "does not exist" in window.last_error
    assert [b.text() for b in open_message_boxes(window)] == [window.last_error]
    assert close_message_boxes(window) == [window.last_error]
    mean, _ = PAPER_TRUTH["lines"]
    assert [b.value() for b in window.true_panel.mean_boxes] == pytest.approx(mean)
    assert len(window.session.true) == 10000


def test_an_unknown_name_falls_back_too(make_window):
    window = make_window(simulator="squares")
    assert window.session.simulator_spec == "lines"
    assert "squares" in window.last_error
    assert close_message_boxes(window) == [window.last_error]


def test_main_parses_the_command_line(monkeypatch, make_window, qapp):
    """main() builds the window from its arguments and runs the event loop."""
    import magan_gui.gui.app as app

    built = {}

    def fake_build(simulator, true, emulator, preset):
        built.update(simulator=simulator, true=true, emulator=emulator, preset=preset)
        return make_window(simulator=simulator, wait_true=False)

    monkeypatch.setattr(app, "build_window", fake_build)
    monkeypatch.setattr(type(qapp), "exec", lambda self: 0)
    assert app.main(["--simulator", "circles", "-platform", "offscreen"]) == 0
    assert built == {"simulator": "circles", "true": None, "emulator": None, "preset": "quick"}
