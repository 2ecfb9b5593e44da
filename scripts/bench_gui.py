"""Responsiveness benchmark: GUI event-loop latency and training speed in the app against the engine alone.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/bench_gui.py --emulator runs/example/emulator.pt \
        [--iterations 1500] [--threads N]

1. The engine alone (what `magan calibrate` runs): Calibrator.run in this process, no GUI.
2. The same calibration started from the app's Calibration panel, while a 5 ms QTimer measures
   how late the GUI thread's event loop serves it (latency = lateness of each tick).
Reports iterations per second of both, their ratio, and the latency percentiles.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emulator", required=True, help="a lines emulator file (magan pretrain / magan example)")
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the app's worker")
    parser.add_argument("--snapshot-seconds", type=float, default=None, help="the panels' snapshot interval")
    args = parser.parse_args()
    app = QApplication(sys.argv[:1])  # noqa: F841 (must live while the window does)
    from magan_gui.core.calibration import Calibrator
    from magan_gui.core.emulator import TrainedEmulator
    from magan_gui.gui import main_window
    from magan_gui.gui.app import build_window

    if args.threads:
        main_window.worker_threads = lambda: args.threads
    if args.snapshot_seconds:
        from magan_gui.gui.panels.run_panel import RunPanel
        RunPanel.snapshot_seconds = args.snapshot_seconds
    window = build_window()
    window.show()

    def wait(condition) -> None:
        """Run the event loop (idle, as app.exec() would) until ``condition`` holds."""
        loop = QEventLoop()
        poll = QTimer()
        poll.timeout.connect(lambda: condition() and loop.quit())
        poll.start(50)
        if not condition():
            loop.exec()
        poll.stop()

    wait(lambda: window.session.true is not None)
    window.pretrain_panel.load_emulator(args.emulator)
    panel = window.calibrate_panel
    panel.iterations.setValue(args.iterations)
    config = panel.config()

    # 1. the engine alone, as `magan calibrate` runs it (all cores)
    calibrator = Calibrator(window.session.simulator, TrainedEmulator.load(args.emulator), window.session.true,
                            config, "cpu")
    t0 = time.perf_counter()
    calibrator.run()
    engine_rate = args.iterations / (time.perf_counter() - t0)
    torch.set_num_threads(os.cpu_count() or 1)

    # 2. the same run in the app, with the event loop watched
    lateness: list[float] = []
    clock = QElapsedTimer()
    period = 5

    def tick() -> None:
        lateness.append(max(0.0, clock.restart() - period))

    timer = QTimer()
    timer.setInterval(period)
    timer.timeout.connect(tick)
    clock.start()
    timer.start()
    t0 = time.perf_counter()
    window.last_error = ""
    panel.request_start()
    wait(lambda: (window.session.result is not None and not window.busy) or window.last_error)
    if window.last_error:
        print(f"the run in the app failed: {window.last_error}")
        return 1
    app_rate = args.iterations / (time.perf_counter() - t0)
    timer.stop()
    lat = np.asarray(lateness[5:])
    print(f"machine: {os.cpu_count()} CPU cores, torch {torch.__version__}, worker threads "
          f"{main_window.worker_threads()}, {args.iterations} calibration iterations, batch {config.batch_size}, "
          f"a snapshot every {config.snapshot_seconds} s")
    print(f"engine alone: {engine_rate:.1f} it/s; in the app: {app_rate:.1f} it/s "
          f"({100 * app_rate / engine_rate:.0f}% of the engine alone, including result building)")
    print(f"GUI event-loop lateness over {len(lat)} ticks: median {np.median(lat):.1f} ms, "
          f"p99 {np.percentile(lat, 99):.1f} ms, max {lat.max():.1f} ms")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
