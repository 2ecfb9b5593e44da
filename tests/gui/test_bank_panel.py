"""The Bank panel driven as a person would: make a bank, learn from it, and the refusals."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from magan_gui.core.bank import build_bank, load_bank
from magan_gui.core.simulators import load_simulator
from tests.conftest import REPO_ROOT

from .conftest import TINY, close_message_boxes, set_tiny
from .test_main_window import click

SLOW_PLUGIN = REPO_ROOT / "scripts" / "slow_plugin.py"


def test_a_bank_made_in_the_app_feeds_pretraining_without_simulating(qtbot, window, wait_run, tmp_path):
    panel = window.bank_panel
    window.tabs.setCurrentWidget(panel)
    assert not window.pretrain_panel.from_bank.isEnabled()          # no bank yet
    panel.path.setText(str(tmp_path / "bank.h5"))
    panel.count.setValue(200)
    panel.chunk.setValue(50)
    with qtbot.waitSignal(window.session.bank_changed, timeout=60000):
        click(qtbot, panel.start_button)
        assert window.busy and panel.stop_button.isEnabled() and not panel.count.isEnabled()
    wait_run(window)
    assert window.session.bank_path == str(tmp_path / "bank.h5") and window.session.bank_size == 200
    assert panel.progress.value() == 200 and panel.status.text().startswith("done: 200 images")
    assert panel.grid.last_array is not None and panel.grid.last_array.size >= 4 * 28 * 28

    pretrain = window.pretrain_panel
    assert pretrain.from_bank.isEnabled() and pretrain.from_bank.isChecked()
    assert "200 images" in pretrain.from_bank.text()
    preset = window.session.stage_configs().pretrain
    assert pretrain.iterations.value() == preset.bank_iterations == 5000   # the quick preset's, from a bank
    pretrain.from_bank.setChecked(False)
    assert pretrain.iterations.value() == preset.iterations == 1600       # fresh simulations: fewer
    pretrain.from_bank.setChecked(True)
    window.tabs.setCurrentWidget(pretrain)
    set_tiny(pretrain)
    made = window.session.simulator.images_made
    with qtbot.waitSignal(window.session.emulator_changed, timeout=60000):
        click(qtbot, pretrain.start_button)
    wait_run(window)
    meta = window.session.emulator.meta
    assert meta["iteration"] == TINY and meta["simulations"]["fresh"] == 0 and meta["simulations"]["bank"] == 200
    assert window.session.simulator.images_made == made


def test_a_bank_file_that_exists_or_belongs_to_another_simulator_is_refused(qtbot, window, tmp_path):
    panel = window.bank_panel
    window.tabs.setCurrentWidget(panel)
    circles_bank = tmp_path / "circles.h5"
    build_bank(load_simulator("circles"), circles_bank, 40, chunk_size=20)
    panel.path.setText(str(circles_bank))
    click(qtbot, panel.start_button)                                  # Start would replace it: refused
    assert not window.busy and "already exists: press Resume" in window.last_error
    assert close_message_boxes(window) == [window.last_error]
    assert not panel.use_existing(str(circles_bank))                  # the window is on lines
    assert "not 'lines'" in window.last_error and window.session.bank_path is None
    assert close_message_boxes(window) == [window.last_error]
    assert not window.pretrain_panel.from_bank.isEnabled()


def test_a_bank_on_a_local_dask_cluster_is_stopped_and_resumed_from_the_app(qtbot, window, wait_run, tmp_path,
                                                                            monkeypatch):
    pytest.importorskip("distributed")
    panel = window.bank_panel
    window.tabs.setCurrentWidget(panel)
    panel.executor.setCurrentIndex(2)                                 # a scheduler, without its address
    assert panel.target.isVisible() and not panel.target_button.isVisible()
    click(qtbot, panel.start_button)
    assert not window.busy and "give the scheduler address first" in window.last_error
    assert close_message_boxes(window) == [window.last_error]

    monkeypatch.setenv("MAGAN_SLOW_SECONDS", "0.05")                  # the Dask workers inherit it
    window.session.set_simulator(load_simulator(f"{SLOW_PLUGIN}:SlowBlob"), f"{SLOW_PLUGIN}:SlowBlob")
    path = tmp_path / "slow.h5"
    panel.path.setText(str(path))
    panel.executor.setCurrentIndex(1)
    panel.workers.setValue(2)
    assert not panel.target.isVisible() and panel.cluster_spec() == "local:2"
    panel.count.setValue(160)
    panel.chunk.setValue(16)
    click(qtbot, panel.start_button)
    assert window.busy and not panel.executor.isEnabled()
    qtbot.waitUntil(lambda: panel.progress.value() >= 16, timeout=60000)
    assert "local:2: 2 worker(s) connected" in panel.status.text()
    click(qtbot, panel.stop_button)
    wait_run(window)
    assert panel.status.text().startswith("stopped:") and window.session.bank_path is None
    with h5py.File(path, "r") as fh:
        done = int(fh["chunk_done"][()].sum())
    assert 1 <= done < 10

    monkeypatch.setenv("MAGAN_SLOW_SECONDS", "0")
    with qtbot.waitSignal(window.session.bank_changed, timeout=60000):
        click(qtbot, panel.resume_button)
    wait_run(window)
    assert panel.status.text().startswith("done:") and "local:2: 2 worker(s) connected" in panel.status.text()
    assert window.session.bank_path == str(path) and window.session.bank_size == 160
    images = load_bank(path, window.session.simulator).images
    assert len(np.unique(images.reshape(160, -1), axis=0)) == 160
    assert panel.executor.isEnabled() and panel.workers.isEnabled()
