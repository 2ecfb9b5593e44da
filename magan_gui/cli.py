"""The ``magan`` command: simulate true images, pretrain an emulator, calibrate, emulate.

Every subcommand runs the same engine as the app.  Bad input ends with one line on stderr and
a non-zero exit, never a traceback; existing outputs are kept unless --force is given.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .core.calibration import CalibrationConfig, Calibrator
from .core.checkpoints import CheckpointError
from .core.data import DataError, load_true_images, make_closure_set
from .core.device import DeviceError, resolve_device
from .core.emulator import TrainedEmulator
from .core.presets import PresetError, apply_preset, load_preset
from .core.pretraining import PRETRAIN_MODES, PretrainConfig, Pretrainer
from .core.progress import RunControl, Snapshot
from .core.results import ResultExistsError, build_result, format_summary, write_result
from .core.simulators import PAPER_TRUTH, SimulatorError, load_simulator

EXIT_BAD_INPUT = 2
USER_ERRORS = (SimulatorError, DataError, CheckpointError, DeviceError, PresetError, ResultExistsError,
               ValueError, OSError)

class UserError(Exception):
    """An error the user can fix; printed as one line."""


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def _refuse_existing(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise UserError(f"{path} already exists (use --force to overwrite)")


def _fmt_time(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


class ProgressBar:
    """Draws snapshots as a one-line progress bar on stderr (a line per 10% when not a terminal)."""

    def __init__(self, label: str, stream=None):
        self.label, self.stream = label, stream or sys.stderr
        self.tty = self.stream.isatty()
        self._last_decile = -1

    def __call__(self, snap: Snapshot) -> None:
        frac = snap.iteration / max(1, snap.iterations)
        extra = ""
        if "fidelity_mse" in snap.metrics:
            extra = f" fidelity MSE {snap.metrics['fidelity_mse']:.4f}"
        if "image_distance" in snap.metrics:
            extra = f" image distance {snap.metrics['image_distance']:.4f}"
        bar = "#" * int(frac * 24)
        text = (f"{self.label} [{bar:<24}] {snap.iteration}/{snap.iterations} {snap.rate:5.1f} it/s "
                f"left {_fmt_time(snap.eta)}{extra}")
        if self.tty:
            self.stream.write("\r" + text.ljust(100) + ("\n" if snap.final else ""))
            self.stream.flush()
        elif int(frac * 10) > self._last_decile or snap.final:
            self._last_decile = int(frac * 10)
            self.stream.write(text + "\n")
            self.stream.flush()


@contextmanager
def _interruptible(control: RunControl) -> Iterator[None]:
    """Ctrl-C stops the loop at the next iteration (files are still written); a second one aborts."""
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if control.stopped:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        sys.stderr.write("\nstopping after this iteration (Ctrl-C again to abort)\n")
        control.stop()

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _configs(args: argparse.Namespace, simulator_name: str) -> tuple[PretrainConfig, CalibrationConfig]:
    preset = load_preset(args.preset)
    pre = apply_preset(PretrainConfig(), preset, "pretrain", simulator_name)
    cal = apply_preset(CalibrationConfig(), preset, "calibrate", simulator_name)
    return pre, cal


# -- subcommands ----------------------------------------------------------------------------------------
def cmd_simulate(args: argparse.Namespace) -> int:
    out = Path(args.output)
    _refuse_existing(out, args.force)
    if out.suffix != ".npz":
        raise UserError(f"{out}: the output must be a .npz file")
    simulator = load_simulator(args.simulator)
    device = resolve_device(args.device)
    t0 = time.perf_counter()
    true = make_closure_set(simulator, args.mean, args.std, args.n, seed=args.seed, device=device)
    true.save_npz(out)
    names = ", ".join(f"{p.name}={m:g}±{s:g}" for p, m, s in zip(simulator.parameters, args.mean, args.std))
    print(f"wrote {len(true)} {simulator.name} images {true.shape[0]}x{true.shape[1]} with true parameters "
          f"({names}) to {out} in {time.perf_counter() - t0:.1f} s")
    return 0


def _pretrain(simulator, spec: str, config: PretrainConfig, device: torch.device, output: Path,
              resume: bool, quiet: bool) -> TrainedEmulator:
    trainer = Pretrainer(simulator, config, device, spec)
    if resume:
        trainer.resume_from(output)
        print(f"resuming {output} at iteration {trainer.iteration}", file=sys.stderr)
    control = RunControl()
    with _interruptible(control):
        emulator = trainer.run(observer=None if quiet else ProgressBar("pretrain"), control=control,
                               checkpoint_path=output)
    meta = emulator.meta
    state = "stopped" if trainer.iteration < config.iterations else "done"
    print(f"pretraining {state}: {simulator.name}, mode {meta['mode']}, {meta['iteration']} iterations in "
          f"{meta['wall_time']:.0f} s on {device}; held-out pixel MSE {meta['fidelity_mse']:.5f} "
          f"(images in [-1, 1]); emulator written to {output}")
    if state == "stopped":
        print(f"continue with: magan pretrain ... -o {output} --resume", file=sys.stderr)
    return emulator


def cmd_pretrain(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if not args.resume:
        _refuse_existing(output, args.force)
    simulator = load_simulator(args.simulator)
    config, _ = _configs(args, simulator.name)
    for key in ("iterations", "batch_size", "mode", "seed"):
        if getattr(args, key) is not None:
            setattr(config, key, getattr(args, key))
    _pretrain(simulator, args.simulator, config, resolve_device(args.device), output, args.resume, args.quiet)
    return 0


def _calibrate(simulator, spec: str, emulator: TrainedEmulator, emulator_path: str, true, config: CalibrationConfig,
               device: torch.device, output: Path, resume: bool, force: bool, quiet: bool) -> dict:
    checkpoint = output.with_name(output.stem + ".checkpoint.pt")
    calibrator = Calibrator(simulator, emulator, true, config, device)
    if resume:
        calibrator.resume_from(checkpoint)
        print(f"resuming {checkpoint} at iteration {calibrator.iteration}", file=sys.stderr)
    control = RunControl()
    with _interruptible(control):
        outcome = calibrator.run(observer=None if quiet else ProgressBar("calibrate"), control=control,
                                 checkpoint_path=checkpoint)
    result = build_result(simulator, spec, outcome, true, emulator.meta, asdict(config), config.seed, device,
                          emulator_path)
    csv_path = write_result(output, result, outcome.samples, overwrite=force or resume)
    print(format_summary(result))
    print(f"result written to {output} (samples: {csv_path}; resumable state: {checkpoint})")
    if outcome.stopped_early:
        print(f"stopped early; continue with: magan calibrate ... -o {output} --resume", file=sys.stderr)
    return result


def cmd_calibrate(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if not args.resume:
        _refuse_existing(output, args.force)
    if output.suffix != ".json":
        raise UserError(f"{output}: the result must be a .json file")
    simulator = load_simulator(args.simulator)
    emulator = TrainedEmulator.load(args.emulator)
    true = load_true_images(args.true, simulator.image_shape, [p.name for p in simulator.parameters])
    _, config = _configs(args, simulator.name)
    for key in ("iterations", "batch_size", "discriminator_on", "seed"):
        if getattr(args, key) is not None:
            setattr(config, key, getattr(args, key))
    _calibrate(simulator, args.simulator, emulator, args.emulator, true, config, resolve_device(args.device),
               output, args.resume, args.force, args.quiet)
    return 0


def cmd_emulate(args: argparse.Namespace) -> int:
    emulator = TrainedEmulator.load(args.emulator)
    if args.export:
        path = Path(args.export)
        _refuse_existing(path, args.force)
        emulator.export_program(path)
        extra = " and its noise (N, H, W)" if emulator.net.noise_image else (
            f" and a latent (N, {emulator.net.latent_dim})" if emulator.net.latent_dim else "")
        print(f"emulator exported to {path}: torch.export.load(path).module()(params{', noise' if extra else ''}) "
              f"maps physical parameters (N, {len(emulator.parameters)}){extra} to images in [0, 1]")
        return 0
    if args.output is None or args.mean is None:
        raise UserError("give --mean (and --std, -n) and -o to emulate images, "
                        "or --export to write a torch.export program")
    output = Path(args.output)
    _refuse_existing(output, args.force)
    std = args.std or [0.0] * len(args.mean)
    if len(args.mean) != len(emulator.parameters) or len(std) != len(emulator.parameters):
        raise UserError(f"the emulator has {len(emulator.parameters)} parameters "
                        f"({', '.join(p.name for p in emulator.parameters)}); give as many means and stds")
    device = resolve_device(args.device)
    emulator.to(device)
    true = make_closure_set(emulator, args.mean, std, args.n, seed=args.seed, device=device)
    true.save_npz(output)
    print(f"wrote {len(true)} emulated images to {output}")
    return 0


def cmd_example(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    simulator = load_simulator(args.simulator)
    mean, std = PAPER_TRUTH[args.simulator]
    device = resolve_device(args.device)
    pre, cal = _configs(args, simulator.name)
    pre.seed = cal.seed = args.seed
    true_path, emulator_path, result_path = folder / "true.npz", folder / "emulator.pt", folder / "result.json"
    for p in (true_path, emulator_path, result_path):
        _refuse_existing(p, args.force)
    print(f"closure test of case study '{args.simulator}' with the paper's population: mean {mean}, std {std}")
    true = make_closure_set(simulator, mean, std, 10000, seed=args.seed + 1000, device=device)
    true.save_npz(true_path)
    true.source = str(true_path)
    emulator = _pretrain(simulator, args.simulator, pre, device, emulator_path, False, args.quiet)
    _calibrate(simulator, args.simulator, emulator, str(emulator_path), true, cal, device, result_path, False,
               True, args.quiet)
    return 0


def _bench_machine(device: torch.device) -> dict[str, str]:
    import os
    import platform

    info = {"date": time.strftime("%Y-%m-%d"), "device": str(device),
            "cpu": platform.processor() or platform.machine(), "cpu_cores": str(os.cpu_count()),
            "torch_threads": str(torch.get_num_threads()), "torch": torch.__version__,
            "python": platform.python_version(), "command": " ".join(["magan", *sys.argv[1:]])}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _bench_writer(args: argparse.Namespace, name: str):
    """Paths of a benchmark's JSON and Markdown, refused if they exist (unless --force)."""
    folder = Path(args.out)
    paths = folder / f"{name}.json", folder / f"{name}.md"
    for p in paths:
        _refuse_existing(p, args.force)
    folder.mkdir(parents=True, exist_ok=True)

    def write(document: dict, markdown: str) -> None:
        import json

        paths[0].write_text(json.dumps(document, indent=1, default=float) + "\n", encoding="utf-8")
        machine = document["machine"]
        where = machine.get("gpu", f"{machine['cpu']}, {machine['cpu_cores']} cores, {machine['torch_threads']} "
                                   "torch threads")
        paths[1].write_text(f"Measured {machine['date']} on {where} ({machine['device']}), torch "
                            f"{machine['torch']}: `{machine['command']}`\n\n{markdown}", encoding="utf-8")
        print(f"wrote {paths[0]} and {paths[1]}")
    return write


def cmd_bench_speed(args: argparse.Namespace) -> int:
    from .core.benchmarks import PAPER_TABLE_III, simulator_throughput
    from .core.networks import Emulator, NetworkSizes
    from .core.simulators import uses_common_noise

    device = resolve_device(args.device)
    write = _bench_writer(args, "speed")
    document: dict = {"machine": _bench_machine(device), "simulators": {}}
    lines = []
    for spec in args.simulator.split(","):
        simulator = load_simulator(spec)
        if args.emulator:
            emulator, trained = TrainedEmulator.load(args.emulator), True
        else:  # weights do not change the speed: an untrained emulator of the same architecture is timed
            net = Emulator(len(simulator.parameters), simulator.image_shape,
                           NetworkSizes.for_image(simulator.image_shape), noise_image=uses_common_noise(simulator))
            emulator, trained = TrainedEmulator(net, simulator.parameters, {"simulator": simulator.name}), False
        print(f"image throughput, {simulator.name}, device {device} (torch threads {torch.get_num_threads()})")
        print(f"{'source':<56}{'images':>9}{'seconds':>10}{'images/s':>12}")
        rows = []
        for n in args.images:
            for r in simulator_throughput(simulator, n, device, emulator=emulator, reference_images=args.reference,
                                          emulator_batch=args.emulator_batch):
                if any(row.source == r.source and row.n_images == r.n_images for row in rows):
                    continue
                rows.append(r)
                print(f"{r.source:<56}{r.n_images:>9}{r.seconds:>10.3f}{r.images_per_second:>12.0f}", flush=True)
        paper = PAPER_TABLE_III.get(simulator.name, {})
        table = []
        for r in rows:
            kind = ("simulator" if "vectorised" in r.source else "loop" if "loop" in r.source else
                    "emulator_gpu" if device.type == "cuda" else "emulator_cpu")
            paper_row = paper.get("simulator" if kind == "loop" else kind)
            paper_s = None
            if paper_row and r.n_images in (10000, 100000, 1000000):
                paper_s = paper_row[(10000, 100000, 1000000).index(r.n_images)]
            elif paper_row and kind == "loop":
                paper_s = round(paper_row[0] * r.n_images / 10000, 4)
            table.append({"source": r.source, "images": r.n_images, "seconds": round(r.seconds, 4),
                          "images_per_second": round(r.images_per_second), "paper_seconds": paper_s,
                          "speedup_over_paper": round(paper_s / r.seconds, 2) if paper_s else None,
                          "max_pixel_error_vs_float32": r.max_error})
        document["simulators"][simulator.name] = {"trained_emulator": trained, "rows": table}
        lines += [f"**{simulator.name}**" + ("" if trained else " (emulator timed with untrained weights of the "
                                                                   "trained architecture: same cost)") + "\n",
                  "| source | images | seconds | images/s | paper seconds | × paper | max pixel error vs fp32 |",
                  "|---|---|---|---|---|---|---|"]
        for t in table:
            err = "" if t["max_pixel_error_vs_float32"] is None else f"{t['max_pixel_error_vs_float32']:.1e}"
            lines.append(f"| {t['source']} | {t['images']:,} | {t['seconds']:.3f} | {t['images_per_second']:,} | "
                         f"{t['paper_seconds'] if t['paper_seconds'] is not None else '–'} | "
                         f"{t['speedup_over_paper'] if t['speedup_over_paper'] is not None else '–'} | {err} |")
        lines.append("")
    write(document, "\n".join(lines))
    return 0


def cmd_bench_accuracy(args: argparse.Namespace) -> int:
    from .core.reproduce import accuracy_markdown, closure_test, summarise_accuracy, write_figures

    device = resolve_device(args.device)
    write = _bench_writer(args, "accuracy")
    summaries, runs_json = [], []
    for name in args.simulators:
        print(f"accuracy: {name}, {args.seeds} seeds, profile {args.profile}, device {device}")
        runs = []
        for k in range(args.seeds):
            run = closure_test(name, args.seed + k, args.profile, device, figures=args.figures and k == 0)
            if args.figures and k == 0:
                for path in write_figures(run, args.out, ""):
                    print(f"  figure {path}")
            runs.append(run)
            runs_json.append(run.summary())
        summaries.append(summarise_accuracy(runs))
    write({"machine": _bench_machine(device), "profile": args.profile, "summaries": summaries, "runs": runs_json},
          accuracy_markdown(summaries))
    return 0 if all(s["meets_targets"] for s in summaries) or not args.check else 1


def cmd_bench_efficiency(args: argparse.Namespace) -> int:
    from .core.reproduce import efficiency, efficiency_markdown

    device = resolve_device(args.device)
    write = _bench_writer(args, "efficiency")
    results = []
    for name in args.simulators:
        print(f"efficiency: {name}, profile {args.profile}, device {device}")
        results.append(efficiency(name, args.profile, device, seed=args.seed, max_iterations=args.max_iterations))
    write({"machine": _bench_machine(device), "profile": args.profile, "results": results},
          efficiency_markdown(results))
    return 0


def cmd_bench_figures(args: argparse.Namespace) -> int:
    from .core.reproduce import closure_test, write_figures

    device = resolve_device(args.device)
    folder = Path(args.out)
    for name in args.simulators:
        for old in sorted(folder.glob(f"fig*_{name}_*.png")):
            _refuse_existing(old, args.force)
    for name in args.simulators:
        print(f"figures: {name}, profile {args.profile}, device {device}")
        run = closure_test(name, args.seed, args.profile, device, figures=True)
        for path in write_figures(run, folder, ""):
            print(f"wrote {path}")
    return 0


# -- parser ---------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The ``magan`` argument parser."""
    parser = argparse.ArgumentParser(prog="magan", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser, seed: bool = True) -> None:
        p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
        if seed:
            p.add_argument("--seed", type=int, default=None, help="random seed (default: the preset's, 0)")
        p.add_argument("--force", action="store_true", help="overwrite existing output files")
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("simulate", help="simulate a closure-test set of true images")
    p.add_argument("--simulator", required=True, help="lines, circles or path/to/file.py:ClassName")
    p.add_argument("--mean", type=_floats, required=True, help="per-parameter means, comma-separated")
    p.add_argument("--std", type=_floats, required=True, help="per-parameter standard deviations")
    p.add_argument("-n", type=_positive_int, default=10000, help="number of images (default 10000)")
    p.add_argument("-o", "--output", required=True, help="output .npz")
    common(p)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("pretrain", help="train the emulator to mimic the simulator")
    p.add_argument("--simulator", required=True)
    p.add_argument("-o", "--output", required=True, help="emulator file (.pt), rewritten as training goes")
    p.add_argument("--iterations", type=_positive_int)
    p.add_argument("--batch-size", type=_positive_int)
    p.add_argument("--mode", choices=PRETRAIN_MODES, help="auto (default), pixel, siamese (the paper), siamese+pixel")
    p.add_argument("--preset", default="quick", help="quick (CPU minutes, default), paper, or a .toml file")
    p.add_argument("--resume", action="store_true", help="continue the run saved in the output file")
    common(p)
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("calibrate", help="learn the best-match parameter distribution for true images")
    p.add_argument("--simulator", required=True)
    p.add_argument("--emulator", required=True, help="emulator file from `magan pretrain`")
    p.add_argument("--true", required=True, help=".npz, .npy, .h5 or a folder of PNG/TIFF images")
    p.add_argument("-o", "--output", required=True, help="result .json (samples go to NAME.samples.csv)")
    p.add_argument("--iterations", type=_positive_int)
    p.add_argument("--batch-size", type=_positive_int)
    p.add_argument("--discriminator-on", choices=("simulated", "emulated"),
                   help="fakes shown to the discriminator: simulated (default) or emulated "
                        "(faster for slow simulators)")
    p.add_argument("--preset", default="quick", help="quick (default), paper, or a .toml file")
    p.add_argument("--resume", action="store_true", help="continue from NAME.checkpoint.pt beside the output")
    common(p)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("emulate", help="use a trained emulator as a fast simulator, or export it")
    p.add_argument("--emulator", required=True)
    p.add_argument("--mean", type=_floats, help="per-parameter means of the images to emulate")
    p.add_argument("--std", type=_floats, help="per-parameter standard deviations (default 0)")
    p.add_argument("-n", type=_positive_int, default=1000)
    p.add_argument("-o", "--output", help="output .npz of emulated images")
    p.add_argument("--export", help="write the emulator as a torch.export program (.pt2) to this path instead")
    common(p)
    p.set_defaults(func=cmd_emulate)

    p = sub.add_parser("example", help="the paper's closure test from nothing: simulate, pretrain, calibrate")
    p.add_argument("--simulator", choices=sorted(PAPER_TRUTH), default="lines")
    p.add_argument("--dir", default="runs/example", help="folder for true.npz, emulator.pt, result.json")
    p.add_argument("--preset", default="quick")
    common(p)
    p.set_defaults(func=cmd_example)

    p = sub.add_parser("bench", help="benchmarks against the paper: accuracy, speed, efficiency, figures")
    bench = p.add_subparsers(dest="bench", required=True, metavar="BENCH")

    def bench_common(b: argparse.ArgumentParser, name: str, profile: bool = True) -> None:
        b.add_argument("--out", default="bench", help="folder for NAME.json and NAME.md (default bench/)")
        b.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
        b.add_argument("--force", action="store_true", help="overwrite earlier results in --out")
        if profile:
            b.add_argument("--profile", default="quick",
                           help="quick (minutes on a CPU, default), full (batch 256, long runs: a GPU) or a .toml")
            b.add_argument("--simulators", type=lambda t: [v.strip() for v in t.split(",") if v.strip()],
                           default=["lines", "circles"], help="case studies, comma-separated (default lines,circles)")
            b.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
        b.set_defaults(func=globals()[f"cmd_bench_{name}"])

    b = bench.add_parser("accuracy", help="closure tests of both case studies over several seeds (Tables I, II)")
    b.add_argument("--seeds", type=_positive_int, default=5, help="number of seeds (default 5)")
    b.add_argument("--figures", action="store_true", help="also write Fig. 4-7 style grids from the first seed")
    b.add_argument("--check", action="store_true", help="exit 1 if a parameter misses the accuracy targets")
    bench_common(b, "accuracy")
    b = bench.add_parser("speed", help="images per second of simulator and emulator (Table III)")
    b.add_argument("--simulator", default="lines,circles", help="simulators, comma-separated (default lines,circles)")
    b.add_argument("--emulator", help="time this trained emulator (default: an untrained one, same architecture)")
    b.add_argument("--images", type=lambda t: [int(v) for v in _floats(t)], default=[10000, 100000],
                   help="comma-separated image counts (default 10000,100000; the paper: 10000,100000,1000000)")
    b.add_argument("--reference", type=int, default=1000,
                   help="images drawn by the one-at-a-time loops (default 1000)")
    b.add_argument("--emulator-batch", type=_positive_int,
                   help="emulator batch size (default 10000 on a GPU, 2048 on the CPU)")
    bench_common(b, "speed", profile=False)
    b = bench.add_parser("efficiency", help="fidelity against pretraining time (Siamese vs pixel), "
                                            "calibration quality against iterations")
    b.add_argument("--max-iterations", type=_positive_int,
                   help="pretraining budget per mode (default: twice the profile's iterations)")
    bench_common(b, "efficiency")
    b = bench.add_parser("figures", help="the paper's Fig. 4-7 grids as PNG from one closure test per case study")
    bench_common(b, "figures")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``magan``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "seed", None) is None and args.command in ("simulate", "emulate", "example"):
        args.seed = 0
    try:
        return args.func(args)
    except (UserError, *USER_ERRORS) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"magan {args.command}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"magan {args.command}: aborted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
