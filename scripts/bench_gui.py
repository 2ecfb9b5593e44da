"""Responsiveness and memory benchmark of the app during a calibration.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/bench_gui.py --emulator runs/example/emulator.pt \
        [--iterations 1500] [--threads N] [--batch N] [--memory]

1. The engine alone (what `magan calibrate` runs, all cores): Calibrator.run in this process, no GUI.
2. The same calibration started from the app's Calibration panel, while a 5 ms QTimer measures
   how late the GUI thread's event loop serves it (latency = lateness of each tick).
Reports the training loop's iterations per second in both (the loop's own clock, as the result
file records it), their ratio, the app's rate including result building, and latency percentiles.

With --memory the engine-alone run is skipped; the process's resident memory is sampled every
second of the app's run, and its growth after the first 1,000 iterations is reported.
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


def resident_mib() -> float:
    """This process's resident set size in MiB (Linux /proc)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emulator", required=True, help="a lines emulator file (magan pretrain / magan example)")
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of the app's worker, at normal priority (default: the app's choice)")
    parser.add_argument("--snapshot-seconds", type=float, default=None, help="the panels' snapshot interval")
    parser.add_argument("--batch", type=int, default=None, help="calibration batch size (default: the panel's)")
    parser.add_argument("--memory", action="store_true", help="measure resident memory instead of speed")
    args = parser.parse_args()
    app = QApplication(sys.argv[:1])  # noqa: F841 (must live while the window does)
    from magan_gui.core.calibration import Calibrator
    from magan_gui.core.emulator import TrainedEmulator
    from magan_gui.gui import main_window
    from magan_gui.gui.app import build_window

    if args.threads:
        main_window.training_threads = lambda: (args.threads, False)
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

    wait(lambda: window.session.true is not None and not window.busy)
    window.pretrain_panel.load_emulator(args.emulator)
    panel = window.calibrate_panel
    panel.iterations.setValue(args.iterations)
    if args.batch:
        panel.batch.setValue(args.batch)
    config = panel.config()

    # 1. the engine alone, as `magan calibrate` runs it (all cores)
    engine_rate = float("nan")
    if not args.memory:
        calibrator = Calibrator(window.session.simulator, TrainedEmulator.load(args.emulator),
                                window.session.true, config, "cpu")
        engine_rate = args.iterations / calibrator.run().wall_time
    torch.set_num_threads(os.cpu_count() or 1)
    rss: list[tuple[int, float]] = []  # (iteration, MiB)
    sampler = QTimer()
    sampler.setInterval(1000)
    sampler.timeout.connect(lambda: rss.append((panel.progress.value(), resident_mib())))

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
    t0, gui_cpu0 = time.perf_counter(), time.thread_time()
    window.last_error = ""
    panel.request_start()
    if args.memory:
        sampler.start()
    wait(lambda: (window.session.result is not None and not window.busy) or window.last_error)
    if window.last_error:
        print(f"the run in the app failed: {window.last_error}")
        return 1
    app_seconds, gui_cpu = time.perf_counter() - t0, time.thread_time() - gui_cpu0
    app_total_rate = args.iterations / app_seconds
    app_rate = args.iterations / window.session.result["wall_time_s"]
    timer.stop()
    sampler.stop()
    rss.append((args.iterations, resident_mib()))
    lat = np.asarray(lateness[5:])
    threads, background = main_window.training_threads()
    print(f"machine: {os.cpu_count()} CPU cores, torch {torch.__version__}, worker threads "
          f"{threads}{' at lowered priority' if background else ''}, {args.iterations} calibration iterations, batch {config.batch_size}, "
          f"a snapshot every {config.snapshot_seconds} s")
    if args.memory:
        after = [m for i, m in rss if i >= 1000]
        print(f"resident memory: {rss[0][1]:.0f} MiB at the start of the run, {after[0]:.0f} MiB at iteration "
              f"{next(i for i, _ in rss if i >= 1000)}, at most {max(after):.0f} MiB after it, {rss[-1][1]:.0f} MiB "
              f"at the end: growth after the first 1,000 iterations {max(after) - after[0]:.0f} MiB "
              f"({len(window.calibrate_panel.snapshots)} snapshots kept, {len(panel.metrics_log)} received)")
    else:
        print(f"training loop: engine alone {engine_rate:.1f} it/s; in the app {app_rate:.1f} it/s "
              f"({100 * app_rate / engine_rate:.0f}% of the engine alone); in the app including result "
              f"building {app_total_rate:.1f} it/s")
    print(f"GUI thread busy (CPU time) {gui_cpu:.1f} s of the app's {app_seconds:.1f} s run "
          f"({100 * gui_cpu / app_seconds:.0f}% of one core)")
    print(f"GUI event-loop lateness over {len(lat)} ticks: median {np.median(lat):.1f} ms, "
          f"p99 {np.percentile(lat, 99):.1f} ms, max {lat.max():.1f} ms")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
