"""The working subcommands: simulate, pretrain, calibrate, emulate, example and plugin-template.

Each is a thin layer over ``core.workflow``: parse, refuse what would be lost, run, summarise.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from ..core import workflow
from ..core.bank import DEFAULT_CHUNK, build_bank
from ..core.data import load_true_images, make_closure_set
from ..core.device import resolve_device
from ..core.emulator import TrainedEmulator
from ..core.errors import MaganError
from ..core.files import refuse_existing, write_atomically
from ..core.pretraining import PRETRAIN_MODES, emulator_verdict
from ..core.progress import RunControl
from ..core.results import format_summary, write_result
from ..core.simulators import BUILTIN_SIMULATORS, check_simulator, load_simulator
from ..examples import example_plugin_source
from .common import EXIT_DIVERGED, ProgressBar, StageProgress, add_run_options, floats, interruptible, positive_int


def _overrides(args: argparse.Namespace, keys: tuple[str, ...]) -> dict:
    """The command-line settings the user gave (None means: the preset's)."""
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def _say_pretrained(pretraining: workflow.Pretraining, device, output: Path) -> None:
    meta = pretraining.emulator.meta
    state = "stopped" if pretraining.stopped else "done"
    print(f"pretraining {state}: {meta['simulator']}, mode {meta['mode']}, {meta['iteration']} iterations in "
          f"{meta['wall_time']:.0f} s on {device}; held-out {meta['fidelity_metric']} {meta['fidelity_mse']:.5f} "
          f"(images in [-1, 1]); emulator written to {output}")
    print(f"emulator: {emulator_verdict(meta)[1]}")
    if pretraining.stopped:
        print(f"continue with: magan pretrain ... -o {output} --resume", file=sys.stderr)


def _say_calibrated(calibration: workflow.Calibration, output: Path, checkpoint: Path, force: bool) -> None:
    csv_path = write_result(output, calibration.result, calibration.outcome.samples, overwrite=force)
    print(format_summary(calibration.result))
    print(f"result written to {output} (samples: {csv_path}"
          + (f"; resumable state: {checkpoint})" if calibration.state is not None else ")"))
    print(f"eigentunes for re-simulation: magan tune {output} -o {output.stem}-tunes")
    if calibration.outcome.stopped_early and calibration.state is not None:
        print(f"stopped early; continue with: magan calibrate ... -o {output} --resume", file=sys.stderr)


def _checkpoint_beside(result: Path) -> Path:
    return result.with_name(result.stem + ".checkpoint.pt")


def cmd_simulate(args: argparse.Namespace) -> int:
    out = Path(args.output)
    refuse_existing(out, force=args.force)
    if out.suffix != ".npz":
        raise MaganError(f"{out}: the output must be a .npz file")
    simulator = load_simulator(args.simulator)
    device = resolve_device(args.device)
    t0 = time.perf_counter()
    true = make_closure_set(simulator, args.mean, args.std, args.n, seed=args.seed, device=device)
    true.save_npz(out)
    names = ", ".join(f"{p.name}={m:g}±{s:g}" for p, m, s in zip(simulator.parameters, args.mean, args.std))
    print(f"wrote {len(true)} {simulator.name} images {true.shape[0]}x{true.shape[1]} with true parameters "
          f"({names}) to {out} in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_bank(args: argparse.Namespace) -> int:
    if args.cluster is not None and args.workers != 1:
        raise MaganError("give either --workers (processes on this computer) or --cluster, not both")
    simulator = load_simulator(args.simulator)
    output = Path(args.output)
    control = RunControl()
    with interruptible(control):
        summary = build_bank(simulator, output, args.n, seed=args.seed, chunk_size=args.chunk_size,
                             workers=args.workers, cluster=args.cluster, resume=args.resume, force=args.force,
                             control=control, observer=None if args.quiet else ProgressBar("bank"))
    rate = summary.made_now / summary.seconds if summary.seconds > 0 else float("nan")
    state = "stopped" if summary.stopped else "done"
    where = summary.executor
    retried = f", {where.retried} chunk run(s) repeated" if where.retried else ""
    print(f"bank {state}: {simulator.name}, {summary.made_now:,} images made now in {summary.seconds:.1f} s "
          f"({rate:,.1f} images/s, {where.description}, {summary.workers} worker(s){retried}); {output} holds "
          f"{summary.n_images:,} parameter sets{', not all simulated yet' if summary.stopped else ', all simulated'}")
    if summary.stopped:
        print(f"continue with: magan bank --simulator {args.simulator} -o {output} --resume", file=sys.stderr)
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if not args.resume:
        refuse_existing(output, force=args.force)
    simulator = load_simulator(args.simulator)
    config = workflow.stage_configs(simulator.name, args.preset).pretrain
    config = replace(config.for_bank() if args.bank else config,
                     **_overrides(args, ("iterations", "batch_size", "mode", "seed")))
    device = resolve_device(args.device)
    control = RunControl()
    with interruptible(control):
        pretraining = workflow.pretrain(simulator, config, device, observer=None if args.quiet else
                                        ProgressBar("pretrain"), control=control, checkpoint_path=output,
                                        resume=output if args.resume else None, bank=args.bank)
    if pretraining.diverged:
        kept = (f"it is kept in {output}" if pretraining.emulator.meta["iteration"] else "no emulator was written")
        return _say_diverged("pretrain", f"{pretraining.diverged}; {kept}; lower the learning rate (lr_emulator in "
                             "a preset file given with --preset) and continue with --resume")
    _say_pretrained(pretraining, device, output)
    return 0


def _say_diverged(command: str, message: str) -> int:
    print(f"magan {command}: error: {message}", file=sys.stderr)
    return EXIT_DIVERGED


def cmd_calibrate(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if not args.resume:
        refuse_existing(output, force=args.force)
    if output.suffix != ".json":
        raise MaganError(f"{output}: the result must be a .json file")
    simulator = load_simulator(args.simulator)
    emulator = TrainedEmulator.load(args.emulator)
    true = load_true_images(args.true, simulator.image_shape, simulator.space.names)
    config = replace(workflow.stage_configs(simulator.name, args.preset).calibrate,
                     **_overrides(args, ("simulation_budget",))).for_budget()
    config = replace(config, **_overrides(args, ("iterations", "batch_size", "discriminator_on", "seed")))
    device = resolve_device(args.device)
    checkpoint = _checkpoint_beside(output)
    if args.ensemble and args.resume:
        raise MaganError("--resume continues one calibration; an ensemble (--ensemble) cannot be continued")
    control = RunControl()
    with interruptible(control):
        calibration = workflow.calibrate(simulator, emulator, true, config, device, emulator_path=args.emulator,
                                         observer=None if args.quiet else ProgressBar("calibrate"), control=control,
                                         checkpoint_path=None if args.ensemble else checkpoint,
                                         resume=checkpoint if args.resume else None, members=args.ensemble or 1)
    if calibration.outcome.diverged:
        kept = (f"it is kept in {checkpoint}" if calibration.outcome.iteration else "nothing was written")
        return _say_diverged("calibrate", f"{calibration.outcome.diverged}; {kept}, and no result was written; "
                             "lower the learning rates (lr_generator, lr_discriminator in a preset file given with "
                             "--preset) and continue with --resume")
    _say_calibrated(calibration, output, checkpoint, args.force or args.resume)
    return 0


def cmd_emulate(args: argparse.Namespace) -> int:
    emulator = TrainedEmulator.load(args.emulator)
    if args.export:
        path = Path(args.export)
        refuse_existing(path, force=args.force)
        emulator.export_program(path)
        extra = " and its noise (N, H, W)" if emulator.net.noise_image else (
            f" and a latent (N, {emulator.net.latent_dim})" if emulator.net.latent_dim else "")
        print(f"emulator exported to {path}: torch.export.load(path).module()(params{', noise' if extra else ''}) "
              f"maps physical parameters (N, {len(emulator.parameters)}){extra} to images in [0, 1]")
        return 0
    if args.output is None or args.mean is None:
        raise MaganError("give --mean (and --std, -n) and -o to emulate images, "
                         "or --export to write a torch.export program")
    output = Path(args.output)
    refuse_existing(output, force=args.force)
    std = args.std or [0.0] * len(args.mean)
    if len(args.mean) != len(emulator.parameters) or len(std) != len(emulator.parameters):
        raise MaganError(f"the emulator has {len(emulator.parameters)} parameters "
                         f"({', '.join(p.name for p in emulator.parameters)}); give as many means and stds")
    device = resolve_device(args.device)
    emulator.to(device)
    true = make_closure_set(check_simulator(emulator, args.emulator), args.mean, std, args.n, seed=args.seed,
                            device=device)
    true.save_npz(output)
    print(f"wrote {len(true)} emulated images to {output}")
    return 0


def cmd_example(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    true_path, emulator_path, result_path = folder / "true.npz", folder / "emulator.pt", folder / "result.json"
    refuse_existing(true_path, emulator_path, result_path, force=args.force)
    simulator = load_simulator(args.simulator)
    configs = workflow.stage_configs(simulator.name, args.preset, seed=args.seed, iterations=args.iterations)
    device = resolve_device(args.device)
    mean, std = simulator.example_population
    print(f"closure test of case study '{args.simulator}' with the paper's population: mean {mean}, std {std}")
    true = workflow.example_closure_set(simulator, args.seed, device)
    folder.mkdir(parents=True, exist_ok=True)
    true.save_npz(true_path)
    true.source = str(true_path)
    checkpoint = _checkpoint_beside(result_path)
    control = RunControl()
    with interruptible(control):
        run = workflow.run_pipeline(simulator, true, configs, device,
                                    observer=None if args.quiet else StageProgress(), control=control,
                                    emulator_path=emulator_path, calibration_checkpoint=checkpoint,
                                    on_pretrained=lambda p: _say_pretrained(p, device, emulator_path))
    if run.calibration is not None:
        _say_calibrated(run.calibration, result_path, checkpoint, force=True)
    return 0


def cmd_plugin_template(args: argparse.Namespace) -> int:
    output = Path(args.output)
    refuse_existing(output, force=args.force)
    write_atomically(output, example_plugin_source())
    print(f"wrote {output}: a complete simulator plugin (class Blob) to start from; try it with "
          f"magan simulate --simulator {output}:Blob ...")
    return 0


def at_least_two(text: str) -> int:
    """An ensemble's size, as an argparse type."""
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"an ensemble needs at least 2 members, got {value}")
    return value


def _add_stage_options(p: argparse.ArgumentParser, resume_help: str) -> None:
    """The options of a training stage: its size, preset and continuation, then the common ones."""
    p.add_argument("--iterations", type=positive_int)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--preset", default="quick", help="quick (CPU minutes, default), full, paper, or a .toml file")
    p.add_argument("--resume", action="store_true", help=resume_help)
    add_run_options(p)


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the ``magan`` parser."""
    p = sub.add_parser("simulate", help="simulate a closure-test set of true images")
    p.add_argument("--simulator", required=True, help="lines, circles, path/to/file.py:ClassName "
                        "or path/to/sim.toml (an external program)")
    p.add_argument("--mean", type=floats, required=True, help="per-parameter means, comma-separated")
    p.add_argument("--std", type=floats, required=True, help="per-parameter standard deviations")
    p.add_argument("-n", type=positive_int, default=10000, help="number of images (default 10000)")
    p.add_argument("-o", "--output", required=True, help="output .npz")
    add_run_options(p)
    p.set_defaults(func=cmd_simulate, seed=0)

    p = sub.add_parser("bank", help="simulate a bank of images over the parameter box, once, for pretraining")
    p.add_argument("--simulator", required=True)
    p.add_argument("-n", type=positive_int, required=True, help="number of images (parameter sets)")
    p.add_argument("-o", "--output", required=True, help="bank file (.h5), written chunk by chunk")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="simulator processes running chunks side by side (default 1: this process)")
    p.add_argument("--cluster", help="run the chunks on Dask instead: local:K (K worker processes here), "
                   "tcp://host:port (a running scheduler) or a dask-jobqueue file (.yaml/.toml: Slurm, HTCondor, "
                   "PBS, ...); needs pip install 'magan-gui[cluster]'")
    p.add_argument("--chunk-size", type=positive_int, default=DEFAULT_CHUNK,
                   help=f"images per chunk, the unit of work and of resumption (default {DEFAULT_CHUNK})")
    p.add_argument("--resume", action="store_true", help="finish the bank in the output file")
    add_run_options(p)
    p.set_defaults(func=cmd_bank, seed=0)

    p = sub.add_parser("pretrain", help="train the emulator to mimic the simulator")
    p.add_argument("--simulator", required=True)
    p.add_argument("-o", "--output", required=True, help="emulator file (.pt), rewritten as training goes")
    p.add_argument("--bank", help="learn from this bank (magan bank) instead of fresh simulations, for the "
                   "preset's bank_iterations (quick: 5000; circles 3000) unless --iterations says otherwise")
    p.add_argument("--mode", choices=PRETRAIN_MODES,
                   help="auto (default: pixel, or energy for a black-box stochastic simulator), "
                        "pixel, energy, siamese (the paper), siamese+pixel")
    _add_stage_options(p, "continue the run saved in the output file")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("calibrate", help="learn the best-match parameter distribution for true images")
    p.add_argument("--simulator", required=True)
    p.add_argument("--emulator", required=True, help="emulator file from `magan pretrain`")
    p.add_argument("--true", required=True, help=".npz, .npy, .h5, a folder of PNG/TIFF images, or a ROOT file: "
                   "file.root, file.root:PATTERN (TH2 names) or file.root:TREE/BRANCH")
    p.add_argument("-o", "--output", required=True, help="result .json (samples go to NAME.samples.csv)")
    p.add_argument("--discriminator-on", choices=("simulated", "emulated"),
                   help="fakes shown to the discriminator: simulated (default) or emulated "
                        "(faster for slow simulators)")
    p.add_argument("--simulation-budget", type=positive_int, metavar="N",
                   help="make at most N fresh simulator images in the whole calibration, evaluations included "
                        "(a simulated batch every few iterations, over the preset's budget_iterations, quick: "
                        "4000, unless --iterations says otherwise; default: no cap)")
    p.add_argument("--ensemble", type=at_least_two, nargs="?", const=workflow.ENSEMBLE_MEMBERS, metavar="K",
                   help=f"calibrate K times (default {workflow.ENSEMBLE_MEMBERS}), each with its own seed and "
                        "bootstrap resample of the true images, and give every figure an uncertainty from their "
                        "spread (K times as long; a budget is shared)")
    _add_stage_options(p, "continue from NAME.checkpoint.pt beside the output")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("emulate", help="use a trained emulator as a fast simulator, or export it")
    p.add_argument("--emulator", required=True)
    p.add_argument("--mean", type=floats, help="per-parameter means of the images to emulate")
    p.add_argument("--std", type=floats, help="per-parameter standard deviations (default 0)")
    p.add_argument("-n", type=positive_int, default=1000)
    p.add_argument("-o", "--output", help="output .npz of emulated images")
    p.add_argument("--export", help="write the emulator as a torch.export program (.pt2) to this path instead")
    add_run_options(p)
    p.set_defaults(func=cmd_emulate, seed=0)

    p = sub.add_parser("example", help="the paper's closure test from nothing: simulate, pretrain, calibrate")
    p.add_argument("--simulator", choices=sorted(BUILTIN_SIMULATORS), default="lines")
    p.add_argument("--dir", default="runs/example", help="folder for true.npz, emulator.pt, result.json")
    p.add_argument("--preset", default="quick")
    p.add_argument("--iterations", type=positive_int,
                   help="iterations of both stages instead of the preset's (e.g. 20 for a smoke test)")
    add_run_options(p)
    p.set_defaults(func=cmd_example, seed=0)

    p = sub.add_parser("plugin-template", help="write the example simulator plugin to a file, to start your own")
    p.add_argument("-o", "--output", default="my_simulator.py", help="where to write it (default my_simulator.py)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_plugin_template)
