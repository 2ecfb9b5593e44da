"""Responsiveness, speed and memory benchmark of the app during a calibration.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/bench_gui.py --emulator runs/example/emulator.pt \
        [--iterations 1500] [--repeats 3] [--threads N] [--batch N] [--memory] [--busy]
    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/bench_gui.py --responsiveness scripts/slow_plugin.py:SlowBlob \
        [--iterations 20] [--batch 8] [--seconds 20] [--true-count 64]

Speed (the default): the same calibration (the app's true images, saved to a file, and the
Calibration panel's settings) runs, in turns, from the command line (`magan calibrate` in a
separate process, as a user runs it) and from the app's Calibration panel, ``--repeats`` times
each, so that drifts of the machine's speed hit both alike.  While the app trains, a 5 ms QTimer
measures how late the GUI thread's event loop serves it.  Reported: the training loop's
iterations per second in each run (the loop's own clock, which the result file records), the
ratio of the medians, the GUI thread's CPU time and the event-loop lateness percentiles.

With --memory the command-line runs are skipped; the process's resident memory is sampled every
second of one run in the app, and its growth after the first 1,000 iterations is reported, with
where it is at iteration 1,000 and at the end: glibc's heap (allocated and in use, allocated and
free but kept) and its direct mappings (mallinfo2), and what the panel itself holds (its kept
snapshots' arrays and its loss curves).

With --responsiveness SPEC (a simulator: a built-in name or path/file.py:ClassName; no emulator
needed) the app is opened on that simulator and its Pretraining panel's Start is pressed, while
the 5 ms QTimer watches the event loop from the moment the window exists: the acceptance check
for slow plugins ("opening it in the app and pressing Start leave the event loop responsive").
The true images are a small closure set (``--true-count``) drawn with the plugin before any
timing, with ``MAGAN_SLOW_SECONDS=0`` (which scripts/slow_plugin.py honours), and given to the
window as a file, so that opening does not wait for thousands of slow simulations.  Lateness is
measured for ``--seconds`` from the click, or until the run ends; then the run is stopped.
With ``--calibrate BUDGET`` pretraining runs to its end, the Calibration panel's Start is pressed
with that simulation budget, and the loop is measured ``--seconds`` more.
Reported (one JSON line, then a summary): ``build_window``'s wall time (it runs on the GUI thread
before the window exists, so it is not a tick), the wall time of the Start click itself, and
the lateness percentiles per tick and corrected for coordinated omission: a freeze of T ms
yields a single late tick, so per-tick percentiles hide it; the corrected ones add the ticks
that the freeze swallowed (late by T - 5, T - 10, ... ms), i.e. the wait that an input event
arriving at a random moment would see.  The exit status is 0 unless the app raised or reported
an error.
"""

from __future__ import annotations

import argparse
import ctypes
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

FRAME_MS = 1000 / 60  # one frame of a 60 Hz display


def resident_mib() -> float:
    """This process's resident set size in MiB (Linux /proc)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                        "fsmblks", "uordblks", "fordblks", "keepcost")]


def heap_mib() -> dict[str, float] | None:
    """glibc's malloc figures over all arenas in MiB (None without glibc 2.33+): ``in_use`` and ``free_kept``
    in the heaps, ``mapped`` in direct mmaps (large blocks)."""
    from magan_gui.gui.worker import libc
    info = getattr(libc(), "mallinfo2", None)
    if info is None:
        return None
    info.restype = _MallInfo2
    m = info()
    return {"in_use": m.uordblks / 2**20, "free_kept": m.fordblks / 2**20, "mapped": m.hblkhd / 2**20}


def panel_held_mib(panel) -> dict[str, float]:
    """What the Calibration panel holds in arrays: its kept snapshots' and its loss curves' buffers."""
    # each array once: every snapshot shares the same grid of true images
    arrays = {id(a): a for snap in panel.snapshots for a in [*vars(snap).values(), *snap.losses.values()]
              if isinstance(a, np.ndarray)}
    kept = sum(a.nbytes for a in arrays.values())
    curves = panel.losses._steps.nbytes + sum(b.nbytes for b in panel.losses._values.values())
    return {"snapshots": kept / 2**20, "loss_curves": curves / 2**20}


def wait(condition) -> None:
    """Run the event loop (idle, as app.exec() would) until ``condition`` holds."""
    loop = QEventLoop()
    poll = QTimer()
    poll.timeout.connect(lambda: condition() and loop.quit())
    poll.start(50)
    if not condition():
        loop.exec()
    poll.stop()


class LatenessMeter:
    """A ``period`` ms QTimer on the GUI thread; ``lateness`` holds how late (ms) the event loop served each tick."""

    def __init__(self, period: int = 5):
        self.period = period
        self.lateness: list[float] = []
        self.clock = QElapsedTimer()
        self.timer = QTimer()
        self.timer.setInterval(period)
        self.timer.timeout.connect(self.tick)

    def tick(self) -> None:
        self.lateness.append(max(0.0, self.clock.restart() - self.period))

    def start(self) -> None:
        """(Re)start the clock and the timer."""
        self.clock.start()
        self.timer.start()

    def restart_clock(self) -> None:
        """Count the next tick's lateness from now (the time before is accounted for elsewhere)."""
        self.clock.restart()

    def stop(self) -> None:
        self.timer.stop()


def corrected_lateness(lateness: np.ndarray, period: float) -> np.ndarray:
    """Per-tick lateness with the ticks a stall swallowed added back (coordinated-omission correction).

    A tick late by L ms stands for the ticks due during the stall, late by L - period, L - 2 period, ...
    """
    extra = [np.arange(late - period, 0.0, -period) for late in lateness if late > period]
    return np.concatenate([lateness, *extra]) if extra else lateness


def lateness_summary(lateness, period: float) -> dict:
    """Median, p99 and max (ms) per tick and corrected; the stalls over 50 ms and the time frozen in them."""
    lat = np.asarray(lateness, dtype=np.float64)
    if lat.size == 0:
        return {"ticks": 0}
    corrected = corrected_lateness(lat, period)
    stalls = lat[lat > 50.0]
    ms = lambda value: round(float(value), 2)  # noqa: E731
    return {"ticks": int(lat.size), "median_ms": ms(np.median(lat)), "p99_ms": ms(np.percentile(lat, 99)),
            "max_ms": ms(lat.max()), "corrected_median_ms": ms(np.median(corrected)),
            "corrected_p99_ms": ms(np.percentile(corrected, 99)), "stalls_over_50ms": int(stalls.size),
            "frozen_in_stalls_s": round(float((stalls + period).sum() / 1000), 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emulator", help="a lines emulator file (magan pretrain / magan example); "
                        "required by the speed and memory modes")
    parser.add_argument("--iterations", type=int, default=None,
                        help="calibration iterations (default 1500), or pretraining iterations with "
                        "--responsiveness (default 20)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of the app's worker (default: the app's choice)")
    parser.add_argument("--snapshot-seconds", type=float, default=None, help="the panels' snapshot interval")
    parser.add_argument("--batch", type=int, default=None,
                        help="calibration batch size (default: the panel's), or pretraining batch size with "
                        "--responsiveness (default 8)")
    parser.add_argument("--repeats", type=int, default=3, help="turns of command line then app (speed)")
    parser.add_argument("--busy", action="store_true",
                        help="keep another CPU-bound program (a one-thread busy loop) running throughout, as on a "
                        "machine where the physicist also compiles or runs a simulation")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--memory", action="store_true", help="measure resident memory instead of speed")
    parser.add_argument("--no-probe", action="store_true",
                        help="speed mode: no 5 ms lateness timer on the GUI thread, as in real use (the timer "
                             "wakes the GUI thread 200 times a second, each time taking the interpreter lock)")
    modes.add_argument("--responsiveness", metavar="SPEC",
                       help="open the app on simulator SPEC (e.g. scripts/slow_plugin.py:SlowBlob), press the "
                       "Pretraining panel's Start and measure the event loop's lateness")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="--responsiveness: how long to measure after pressing Start (default 20)")
    parser.add_argument("--true-count", type=int, default=64,
                        help="--responsiveness: true images drawn before opening (default 64)")
    parser.add_argument("--calibrate", type=int, metavar="BUDGET", default=None,
                        help="--responsiveness: let pretraining finish, then press the Calibration panel's Start "
                        "with this simulation budget and measure --seconds more")
    args = parser.parse_args()
    if args.responsiveness is None and not args.emulator:
        parser.error("--emulator is required for the speed and memory modes (or give --responsiveness SPEC)")
    if args.responsiveness is not None and args.emulator:
        parser.error("--emulator belongs to the speed and memory modes, not to --responsiveness")
    if args.iterations is None:
        args.iterations = 20 if args.responsiveness is not None else 1500
    app = QApplication(sys.argv[:1])  # noqa: F841 (must live while the window does)
    from magan_gui.gui import main_window

    if args.threads:
        main_window.training_threads = lambda: args.threads
    if args.snapshot_seconds:
        from magan_gui.gui.panels.run_panel import RunPanel
        RunPanel.snapshot_seconds = args.snapshot_seconds
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    try:
        if args.responsiveness is not None:
            return responsiveness(args)
        return speed_or_memory(args)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()


def speed_or_memory(args) -> int:
    """The speed mode (command line against app) or, with --memory, the app's resident memory."""
    from magan_gui.gui import main_window
    from magan_gui.gui.app import build_window

    window = build_window()
    window.show()
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
    breakdown: list[tuple[int, dict[str, float]]] = []  # (iteration, where the memory is) at 1,000 and the end
    sampler = QTimer()
    sampler.setInterval(1000)

    def sample() -> None:
        rss.append((panel.progress.value(), resident_mib()))
        if rss[-1][0] >= 1000 and not breakdown:
            breakdown.append((rss[-1][0], {**(heap_mib() or {}), **panel_held_mib(panel)}))

    sampler.timeout.connect(sample)
    meter = LatenessMeter()
    gui_cpu = app_seconds = 0.0

    def app_rate() -> float:
        """The same run from the Calibration panel, with the event loop watched; its loop's it/s."""
        nonlocal gui_cpu, app_seconds
        window.session.result = None
        window.last_error = ""
        if not args.no_probe:
            meter.start()
        t0, cpu0 = time.perf_counter(), time.thread_time()
        panel.request_start()
        if args.memory:
            sampler.start()
        wait(lambda: (window.session.result is not None and not window.busy) or window.last_error)
        meter.stop()
        sampler.stop()
        if window.last_error:
            raise SystemExit(f"the run in the app failed: {window.last_error}")
        app_seconds += time.perf_counter() - t0
        gui_cpu += time.thread_time() - cpu0
        return args.iterations / window.session.result["wall_time_s"]

    threads = main_window.training_threads()
    print(f"machine: {os.cpu_count()} CPU cores, torch {torch.__version__}; the app's worker: {threads} threads"
          f"; {args.iterations} calibration iterations, batch "
          f"{config.batch_size}, a snapshot every {config.snapshot_seconds} s"
          f"{'; another CPU-bound program running throughout' if args.busy else ''}", flush=True)
    if args.memory:
        app_rate()
        rss.append((args.iterations, resident_mib()))
        breakdown.append((args.iterations, {**(heap_mib() or {}), **panel_held_mib(panel)}))
        # the loop's samples, then those taken while the worker builds the result (its checks simulate)
        loop = [m for i, m in rss[:-1] if 1000 <= i < args.iterations]
        finishing = [m for i, m in rss[:-1] if i >= args.iterations]
        print(f"resident memory: {rss[0][1]:.0f} MiB at the start of the run, {loop[0]:.0f} MiB at iteration "
              f"{next(i for i, _ in rss if i >= 1000)}, at most {max(loop):.0f} MiB in the rest of the loop: growth "
              f"after the first 1,000 iterations {max(loop) - loop[0]:.0f} MiB; at most "
              f"{max(finishing, default=float('nan')):.0f} MiB while the result was built, {rss[-1][1]:.0f} MiB at "
              f"the end ({len(window.calibrate_panel.snapshots)} snapshots kept, {len(panel.metrics_log)} received)")
        step = max(1, len(rss) // 12)
        print("resident memory by iteration (MiB): " + ", ".join(f"{i}: {m:.0f}" for i, m in rss[::step] + rss[-1:]))
        for iteration, parts in breakdown:
            print(f"  at iteration {iteration:,} (MiB): " + ", ".join(f"{k.replace('_', ' ')} {v:.1f}"
                                                                   for k, v in parts.items()))
    else:
        cli, app = [], []
        for repeat in range(args.repeats):
            cli.append(command_line_rate())
            app.append(app_rate())
            print(f"  turn {repeat + 1}: command line {cli[-1]:.1f} it/s, app {app[-1]:.1f} it/s", flush=True)
        print(f"training loop, median of {args.repeats}: command line {np.median(cli):.1f} it/s, app "
              f"{np.median(app):.1f} it/s: the app at {100 * np.median(app) / np.median(cli):.0f}% of the command line")
    lat = np.asarray(meter.lateness[5:])
    print(f"GUI thread busy (CPU time) {gui_cpu:.1f} s of the app's {app_seconds:.1f} s of training "
          f"({100 * gui_cpu / app_seconds:.0f}% of one core)")
    if len(lat):
        print(f"GUI event-loop lateness over {len(lat)} ticks: median {np.median(lat):.1f} ms, "
              f"p99 {np.percentile(lat, 99):.1f} ms, max {lat.max():.1f} ms")
    window.ask_before_losing_work = lambda question: "discard"  # a benchmark's run is no work to keep
    window.close()
    return 0


def write_true_images(spec: str, count: int, folder: Path) -> Path:
    """A closure set of ``count`` images drawn with ``spec`` at full speed (MAGAN_SLOW_SECONDS=0), as .npz.

    Only the public plugin contract is used: parameters drawn around the defaults (5% of the range
    as std, kept inside [low, high]), one ``simulate`` call, saved as ``images``/``params``/``param_names``.
    """
    from magan_gui import load_simulator

    before = os.environ.get("MAGAN_SLOW_SECONDS")
    os.environ["MAGAN_SLOW_SECONDS"] = "0"
    try:
        simulator = load_simulator(spec)
        parameters = list(simulator.parameters)
        low = np.array([p.low for p in parameters], np.float32)
        high = np.array([p.high for p in parameters], np.float32)
        mean = np.array([(p.low + p.high) / 2 if p.default is None else p.default for p in parameters], np.float32)
        draws = np.random.default_rng(1).normal(mean, 0.05 * (high - low), size=(count, len(parameters)))
        params = np.clip(draws, low, high).astype(np.float32)
        out = simulator.simulate(torch.from_numpy(params))
    finally:
        if before is None:
            os.environ.pop("MAGAN_SLOW_SECONDS", None)
        else:
            os.environ["MAGAN_SLOW_SECONDS"] = before
    images = out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
    path = folder / "true.npz"
    np.savez(path, images=np.clip(images, 0.0, 1.0).astype(np.float32), params=params,
             param_names=np.array([p.name for p in parameters]))
    return path


def responsiveness(args) -> int:
    """Open the app on ``args.responsiveness``, press the Pretraining panel's Start, watch the event loop."""
    from magan_gui.gui import main_window
    from magan_gui.gui.app import build_window

    spec = args.responsiveness
    raised: list[str] = []
    default_hook = sys.excepthook

    def hook(kind, value, tb) -> None:  # an exception in a Qt slot reaches here, not the caller
        raised.append(f"{kind.__name__}: {value}")
        default_hook(kind, value, tb)

    sys.excepthook = hook
    folder = Path(tempfile.mkdtemp(prefix="bench_gui_"))
    true_path = write_true_images(spec, args.true_count, folder)

    meter = LatenessMeter()
    meter.start()  # already running: a tick that build_window lets through (if it spins the loop) counts as opening
    t0 = time.perf_counter()
    window = build_window(simulator=spec, true=str(true_path))
    build_s = time.perf_counter() - t0
    opening_ticks = len(meter.lateness)
    meter.restart_clock()  # from here on: lateness from the moment the window exists
    window.show()
    t_window = time.perf_counter()
    problem = ""
    if getattr(window.session, "simulator_spec", spec) != spec:
        problem = f"the app did not open {spec}: {window.last_error or 'no message'}"
    wait(lambda: (window.session.true is not None and not window.busy) or time.perf_counter() - t_window > 600)
    panel = window.pretrain_panel
    window.tabs.setCurrentWidget(panel)
    panel.iterations.setValue(args.iterations)
    panel.batch.setValue(args.batch or 8)
    heldout = getattr(panel.config(), "heldout", None)
    idle_until = time.perf_counter() + 1.0  # the window shown and idle for a second, as a user would see it
    wait(lambda: time.perf_counter() >= idle_until)
    ticks_before_start = len(meter.lateness)
    threads = main_window.training_threads()
    print(f"machine: {os.cpu_count()} CPU cores, torch {torch.__version__}; the app's worker: {threads} threads"
          f"; simulator {spec}; pretraining {args.iterations} "
          f"iterations, batch {panel.batch.value()}, held-out set {heldout}; measuring {args.seconds:g} s from Start",
          flush=True)

    start_enabled = panel.start_button.isEnabled()
    if not problem and not start_enabled:
        problem = "the Pretraining panel's Start button is disabled"
    t_click = time.perf_counter()
    if not problem:
        panel.start_button.click()
    click_ms = (time.perf_counter() - t_click) * 1000
    started = window.busy
    if not problem and not started:
        problem = f"pressing Start started no run: {window.last_error or 'no message'}"
    deadline = max(t_click + args.seconds, time.perf_counter() + 0.25)  # see at least the tick after the click
    wait(lambda: time.perf_counter() >= deadline or not window.busy)
    calibration: dict = {}
    if args.calibrate is not None and not problem:
        wait(lambda: not window.busy or time.perf_counter() - t_click > 900)  # pretraining runs to its end
        if window.session.emulator is None:
            problem = f"pretraining left no emulator to calibrate with: {window.last_error or 'no message'}"
        else:
            cal = window.calibrate_panel
            window.tabs.setCurrentWidget(cal)
            cal.iterations.setValue(args.iterations)
            cal.batch.setValue(args.batch or 8)
            cal.budget_input.setValue(args.calibrate)
            ticks_before_calibration = len(meter.lateness)
            t_cal = time.perf_counter()
            cal.start_button.click()
            calibration["start_click_ms"] = round((time.perf_counter() - t_cal) * 1000, 1)
            if not window.busy:
                problem = f"pressing Calibrate's Start started no run: {window.last_error or 'no message'}"
            wait(lambda: time.perf_counter() >= t_cal + args.seconds or not window.busy)
            calibration["iterations_reached"] = cal.progress.value()
            calibration["measured_s"] = round(time.perf_counter() - t_cal, 2)
    measured_s = time.perf_counter() - t_click
    meter.stop()
    finished = started and not window.busy

    t_stop = time.perf_counter()
    window.stop()
    stopped_in_time = window.wait_for_thread(120_000)
    if not stopped_in_time:
        print("the run did not stop within 120 s of window.stop(); waiting for it", flush=True)
    wait(lambda: not window.busy)  # the queued finished / thread-finished signals
    stop_s = time.perf_counter() - t_stop
    reached = panel.progress.value()
    emulator = window.session.emulator
    if emulator is not None:
        reached = max(reached, int(emulator.meta.get("iteration", 0)))
    if window.last_error and not problem:
        problem = window.last_error

    whole = lateness_summary(meter.lateness, meter.period)
    after_start = lateness_summary(meter.lateness[ticks_before_start:], meter.period)
    if calibration:
        calibration["lateness"] = lateness_summary(meter.lateness[ticks_before_calibration:], meter.period)
    report = {
        "mode": "responsiveness", "simulator": spec, "iterations": args.iterations, "batch": panel.batch.value(),
        "heldout": heldout, "seconds": args.seconds, "build_window_s": round(build_s, 3),
        "ticks_during_build_window": opening_ticks, "start_click_ms": round(click_ms, 1),
        "start_within_frame": click_ms <= FRAME_MS, "run_started": started, "run_finished": finished,
        "measured_s": round(measured_s, 2), "iterations_reached": reached, "stop_s": round(stop_s, 2),
        "lateness": whole, "lateness_after_start": after_start, "error": problem or None,
        "exceptions": raised, "calibration": calibration or None,
    }
    print(json.dumps(report), flush=True)

    def line(label: str, s: dict) -> str:
        if not s["ticks"]:
            return f"{label}: no ticks"
        return (f"{label}: {s['ticks']} ticks, per tick median {s['median_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms, "
                f"max {s['max_ms']:.0f} ms; corrected for the swallowed ticks median {s['corrected_median_ms']:.1f} ms"
                f", p99 {s['corrected_p99_ms']:.1f} ms; {s['stalls_over_50ms']} stalls over 50 ms, "
                f"{s['frozen_in_stalls_s']:.2f} s frozen in them")

    print(f"build_window (GUI thread, before the window exists): {build_s:.2f} s")
    print(f"Start click returned in {click_ms:.1f} ms: {'within' if click_ms <= FRAME_MS else 'NOT within'} one "
          f"frame ({FRAME_MS:.1f} ms)")
    print(line("event-loop lateness from the window's opening", whole))
    print(line("event-loop lateness from Start", after_start))
    if calibration:
        print(f"Calibrate's Start click returned in {calibration['start_click_ms']:.1f} ms (budget {args.calibrate})")
        print(line("event-loop lateness from Calibrate's Start", calibration["lateness"]))
        print(f"calibration reached iteration {calibration['iterations_reached']} in {calibration['measured_s']} s")
    print(f"run {'finished' if finished else 'still going' if started else 'not started'} after {measured_s:.1f} s; "
          f"iterations reached {reached} of {args.iterations}; stopping took {stop_s:.2f} s")
    if problem:
        print(f"problem: {problem}")
    window.ask_before_losing_work = lambda question: "discard"  # a benchmark's run is no work to keep
    window.close()
    return 1 if raised or problem else 0


if __name__ == "__main__":
    sys.exit(main())
