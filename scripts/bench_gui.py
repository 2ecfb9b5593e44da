"""Responsiveness, speed and memory benchmark of the app during a calibration.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/bench_gui.py --emulator runs/example/emulator.pt \
        [--iterations 1500] [--repeats 3] [--threads N] [--batch N] [--memory]

Speed (the default): the same calibration (the app's true images, saved to a file, and the
Calibration panel's settings) runs, in turns, from the command line (`magan calibrate` in a
separate process, as a user runs it) and from the app's Calibration panel, ``--repeats`` times
each, so that drifts of the machine's speed hit both alike.  While the app trains, a 5 ms QTimer
measures how late the GUI thread's event loop serves it.  Reported: the training loop's
iterations per second in each run (the loop's own clock, which the result file records), the
ratio of the medians, the GUI thread's CPU time and the event-loop lateness percentiles.

With --memory the command-line runs are skipped; the process's resident memory is sampled every
second of one run in the app, and its growth after the first 1,000 iterations is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
    parser.add_argument("--repeats", type=int, default=3, help="turns of command line then app (speed)")
    parser.add_argument("--memory", action="store_true", help="measure resident memory instead of speed")
    args = parser.parse_args()
    app = QApplication(sys.argv[:1])  # noqa: F841 (must live while the window does)
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
    folder = Path(tempfile.mkdtemp(prefix="bench_gui_"))
    true_path = folder / "true.npz"
    window.session.true.save_npz(true_path)

    def command_line_rate() -> float:
        """`magan calibrate` with the panel's settings, in its own process; its loop's it/s."""
        out = folder / "cli.json"
        subprocess.run([sys.executable, "-m", "magan_gui.cli", "calibrate",
                        "--simulator", window.session.simulator.name, "--emulator", args.emulator,
                        "--true", str(true_path), "-o", str(out),
                        "--iterations", str(args.iterations), "--batch-size", str(config.batch_size),
                        "--discriminator-on", config.discriminator_on, "--seed", str(config.seed),
                        "--device", "cpu", "--quiet", "--force"], check=True, stdout=subprocess.DEVNULL)
        return args.iterations / json.loads(out.read_text())["wall_time_s"]

    rss: list[tuple[int, float]] = []  # (iteration, MiB)
    sampler = QTimer()
    sampler.setInterval(1000)
    sampler.timeout.connect(lambda: rss.append((panel.progress.value(), resident_mib())))
    lateness: list[float] = []
    clock = QElapsedTimer()
    period = 5

    def tick() -> None:
        lateness.append(max(0.0, clock.restart() - period))

    timer = QTimer()
    timer.setInterval(period)
    timer.timeout.connect(tick)
    gui_cpu = app_seconds = 0.0

    def app_rate() -> float:
        """The same run from the Calibration panel, with the event loop watched; its loop's it/s."""
        nonlocal gui_cpu, app_seconds
        window.session.result = None
        window.last_error = ""
        clock.start()
        timer.start()
        t0, cpu0 = time.perf_counter(), time.thread_time()
        panel.request_start()
        if args.memory:
            sampler.start()
        wait(lambda: (window.session.result is not None and not window.busy) or window.last_error)
        timer.stop()
        sampler.stop()
        if window.last_error:
            raise SystemExit(f"the run in the app failed: {window.last_error}")
        app_seconds += time.perf_counter() - t0
        gui_cpu += time.thread_time() - cpu0
        return args.iterations / window.session.result["wall_time_s"]

    threads, background = main_window.training_threads()
    print(f"machine: {os.cpu_count()} CPU cores, torch {torch.__version__}; the app's worker: {threads} threads"
          f"{' at lowered priority' if background else ''}; {args.iterations} calibration iterations, batch "
          f"{config.batch_size}, a snapshot every {config.snapshot_seconds} s", flush=True)
    if args.memory:
        app_rate()
        rss.append((args.iterations, resident_mib()))
        after = [m for i, m in rss if i >= 1000]
        print(f"resident memory: {rss[0][1]:.0f} MiB at the start of the run, {after[0]:.0f} MiB at iteration "
              f"{next(i for i, _ in rss if i >= 1000)}, at most {max(after):.0f} MiB after it, {rss[-1][1]:.0f} MiB "
              f"at the end: growth after the first 1,000 iterations {max(after) - after[0]:.0f} MiB "
              f"({len(window.calibrate_panel.snapshots)} snapshots kept, {len(panel.metrics_log)} received)")
    else:
        cli, app = [], []
        for repeat in range(args.repeats):
            cli.append(command_line_rate())
            app.append(app_rate())
            print(f"  turn {repeat + 1}: command line {cli[-1]:.1f} it/s, app {app[-1]:.1f} it/s", flush=True)
        print(f"training loop, median of {args.repeats}: command line {np.median(cli):.1f} it/s, app "
              f"{np.median(app):.1f} it/s: the app at {100 * np.median(app) / np.median(cli):.0f}% of the command line")
    lat = np.asarray(lateness[5:])
    print(f"GUI thread busy (CPU time) {gui_cpu:.1f} s of the app's {app_seconds:.1f} s of training "
          f"({100 * gui_cpu / app_seconds:.0f}% of one core)")
    print(f"GUI event-loop lateness over {len(lat)} ticks: median {np.median(lat):.1f} ms, "
          f"p99 {np.percentile(lat, 99):.1f} ms, max {lat.max():.1f} ms")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
