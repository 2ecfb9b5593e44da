"""Emulator explorer speed: slider moves per second the explorer redraws, on the 28x28 lines emulator.

    .venv/bin/python scripts/bench_explorer.py [PRETRAIN_ITERATIONS]

The emulator is the default network after a few iterations (its speed does not depend on training).
"""
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import torch  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from magan_gui.core.pretraining import PretrainConfig, Pretrainer  # noqa: E402
from magan_gui.core.simulators import load_simulator  # noqa: E402
from magan_gui.gui.panels.explorer import STEPS, EmulatorExplorer  # noqa: E402
from magan_gui.gui.session import Session  # noqa: E402
from magan_gui.gui.worker import keep_gui_thread_serial  # noqa: E402

app = QApplication([])
keep_gui_thread_serial()   # as the app's window does
lines = load_simulator("lines")
config = PretrainConfig(iterations=int(sys.argv[1]) if len(sys.argv) > 1 else 20, batch_size=16, heldout=32,
                        eval_every=20, grid_rows=3, snapshot_seconds=1e9, checkpoint_seconds=1e9, seed=0)
emulator = Pretrainer(lines, config, "cpu").run()
print("emulator weights:", sum(p.numel() for p in emulator.net.parameters()))
session = Session()
session.set_simulator(lines, "lines")
session.set_emulator(emulator)
explorer = EmulatorExplorer(session)
explorer.on_release_box.setChecked(False)   # the emulator alone: what a drag redraws
explorer.resize(460, 720)
explorer.show()
app.processEvents()
slider = explorer.controls[0].slider
slider.setSliderDown(True)                  # a drag: no simulation on each step
start, moves, draws = time.perf_counter(), 0, explorer.draw_count
while time.perf_counter() - start < 2.0:
    slider.setValue((moves * 37) % (STEPS + 1))
    moves += 1
    app.processEvents()
elapsed = time.perf_counter() - start
slider.setSliderDown(False)
print(f"{moves / elapsed:.0f} slider moves/s, {(explorer.draw_count - draws) / elapsed:.0f} emulator redraws/s "
      f"(torch threads {torch.get_num_threads()})")
t = time.perf_counter()
for _ in range(200):
    explorer.draw_emulator()
print(f"draw_emulator alone: {(time.perf_counter() - t) / 200 * 1000:.2f} ms")
