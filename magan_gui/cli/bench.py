"""``magan bench``: the paper's tables and figures, measured on this machine (``magan_gui.bench``)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..bench.budget import BANK_SHARE
from ..core import workflow
from ..core.device import resolve_device
from ..core.files import refuse_existing, write_atomically
from .common import DEVICE_HELP, floats, names, positive_int


def _machine(device: torch.device) -> dict[str, str]:
    info = {"date": time.strftime("%Y-%m-%d"), "device": str(device),
            "cpu": platform.processor() or platform.machine(), "cpu_cores": str(os.cpu_count()),
            "torch_threads": str(torch.get_num_threads()), "torch": torch.__version__,
            "python": platform.python_version(), "command": " ".join(["magan", *sys.argv[1:]])}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _writer(args: argparse.Namespace, name: str) -> Callable[[dict, str], None]:
    """A writer of the benchmark's NAME.json and NAME.md in --out; both are refused now if they exist."""
    folder = Path(args.out)
    json_path, md_path = folder / f"{name}.json", folder / f"{name}.md"
    refuse_existing(json_path, md_path, force=args.force)

    def write(document: dict, markdown: str) -> None:
        write_atomically(json_path, json.dumps(document, indent=1, default=float) + "\n")
        machine = document["machine"]
        where = machine.get("gpu", f"{machine['cpu']}, {machine['cpu_cores']} cores, {machine['torch_threads']} "
                                   "torch threads")
        write_atomically(md_path, f"Measured {machine['date']} on {where} ({machine['device']}), torch "
                                  f"{machine['torch']}: `{machine['command']}`\n\n{markdown}")
        print(f"wrote {json_path} and {md_path}")
    return write


def cmd_speed(args: argparse.Namespace) -> int:
    from ..bench.speed import speed_table

    device = resolve_device(args.device)
    write = _writer(args, "speed")
    table, markdown = speed_table(names(args.simulator), args.images, device, args.emulator, args.reference,
                                  args.emulator_batch, log=lambda line: print(line, flush=True))
    if args.training_iterations:
        from ..bench.speed import training_speed
        from ..bench.timing import timing_markdown

        for spec in names(args.simulator):
            print(f"training speed, {spec}, profile {args.profile}, {args.training_iterations} iterations per stage")
            name, stages = training_speed(spec, args.profile, device, args.training_iterations)
            table.setdefault(name, {})["training"] = {"profile": args.profile, "stages": stages}
            part = timing_markdown(stages)
            print(part, flush=True)
            markdown += (f"\n**{spec}: training, profile {args.profile}** ({args.training_iterations} iterations "
                         f"per stage)\n\n{part}\n")
    write({"machine": _machine(device), "simulators": table}, markdown)
    return 0


def cmd_accuracy(args: argparse.Namespace) -> int:
    from ..bench.closure import accuracy_markdown, closure_test, summarise_accuracy, write_figures

    device = resolve_device(args.device)
    write = _writer(args, "accuracy")
    summaries, runs_json = [], []
    for name in args.simulators:
        print(f"accuracy: {name}, {args.seeds} seeds, profile {args.profile}, device {device}")
        runs = []
        for k in range(args.seeds):
            figures = args.figures and k == 0
            run = closure_test(name, args.seed + k, args.profile, device, figures=figures)
            if figures:
                for path in write_figures(run, args.out, ""):
                    print(f"  figure {path}")
            runs.append(run)
            runs_json.append(run.summary())
        summaries.append(summarise_accuracy(runs))
    write({"machine": _machine(device), "profile": args.profile, "summaries": summaries, "runs": runs_json},
          accuracy_markdown(summaries))
    return 0 if all(s["meets_targets"] for s in summaries) or not args.check else 1


def cmd_efficiency(args: argparse.Namespace) -> int:
    from ..bench.closure import efficiency, efficiency_markdown

    device = resolve_device(args.device)
    write = _writer(args, "efficiency")
    results = []
    for name in args.simulators:
        print(f"efficiency: {name}, profile {args.profile}, device {device}")
        results.append(efficiency(name, args.profile, device, seed=args.seed, max_iterations=args.max_iterations))
    write({"machine": _machine(device), "profile": args.profile, "results": results},
          efficiency_markdown(results))
    return 0


def cmd_budget(args: argparse.Namespace) -> int:
    from ..bench.budget import budget_closure, budget_markdown, meets

    device = resolve_device(args.device)
    write = _writer(args, "budget")
    runs = []
    for name in args.simulators:
        for total in args.totals:
            print(f"budget: {name}, {total:,} simulator images in all, {args.seeds} seed(s), profile {args.profile}")
            for k in range(args.seeds):
                runs.append(budget_closure(name, args.seed + k, total, args.profile, device, Path(args.out) / "banks",
                                           bank_share=args.bank_share, pretrain_iterations=args.pretrain_iterations,
                                           members=args.ensemble,
                                           log=lambda line: print(line, flush=True)))
                write({"machine": _machine(device), "profile": args.profile, "runs": runs}, budget_markdown(runs))
    return 0 if all(meets(r) for r in runs) or not args.check else 1


def cmd_figures(args: argparse.Namespace) -> int:
    from ..bench.closure import closure_test, write_figures

    device = resolve_device(args.device)
    folder = Path(args.out)
    for name in args.simulators:
        refuse_existing(*sorted(folder.glob(f"fig*_{name}_*.png")), force=args.force)
    for name in args.simulators:
        print(f"figures: {name}, profile {args.profile}, device {device}")
        run = closure_test(name, args.seed, args.profile, device, figures=True)
        for path in write_figures(run, folder, ""):
            print(f"wrote {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``magan bench`` and its benchmarks to the ``magan`` parser."""
    p = sub.add_parser("bench", help="benchmarks against the paper: accuracy, speed, efficiency, figures")
    bench = p.add_subparsers(dest="bench", required=True, metavar="BENCH")

    def options(b: argparse.ArgumentParser, func: Callable[[argparse.Namespace], int], profile: bool = True) -> None:
        b.add_argument("--out", default="bench", help="folder for NAME.json and NAME.md (default bench/)")
        b.add_argument("--device", default="auto", help=DEVICE_HELP)
        b.add_argument("--force", action="store_true", help="overwrite earlier results in --out")
        if profile:
            b.add_argument("--profile", default="quick",
                           help="quick (minutes on a CPU, default), full (batch 256, long runs: a GPU) or a .toml")
            b.add_argument("--simulators", type=names, default=["lines", "circles"],
                           help="case studies, comma-separated (default lines,circles)")
            b.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
        b.set_defaults(func=func)

    b = bench.add_parser("accuracy", help="closure tests of both case studies over several seeds (Tables I, II)")
    b.add_argument("--seeds", type=positive_int, default=5, help="number of seeds (default 5)")
    b.add_argument("--figures", action="store_true", help="also write Fig. 4-7 style grids from the first seed")
    b.add_argument("--check", action="store_true", help="exit 1 if a parameter misses the accuracy targets")
    options(b, cmd_accuracy)
    b = bench.add_parser("speed", help="images per second of simulator and emulator (Table III)")
    b.add_argument("--simulator", default="lines,circles", help="simulators, comma-separated (default lines,circles)")
    b.add_argument("--emulator", help="time this trained emulator (default: an untrained one, same architecture)")
    b.add_argument("--images", type=lambda t: [int(v) for v in floats(t)], default=[10000, 100000],
                   help="comma-separated image counts (default 10000,100000; the paper: 10000,100000,1000000)")
    b.add_argument("--reference", type=int, default=1000,
                   help="images drawn by the one-at-a-time loops (default 1000)")
    b.add_argument("--emulator-batch", type=positive_int,
                   help="emulator batch size (default 10000 on a GPU, 2048 on the CPU)")
    b.add_argument("--training-iterations", type=int, default=300,
                   help="also time both training stages for this many iterations each (default 300; 0: skip)")
    b.add_argument("--profile", default="quick", help="the preset whose batch sizes the training is timed at "
                                                      "(default quick)")
    options(b, cmd_speed, profile=False)
    b = bench.add_parser("efficiency", help="fidelity against pretraining time (Siamese vs pixel), "
                                            "calibration quality against iterations")
    b.add_argument("--max-iterations", type=positive_int,
                   help="pretraining budget per mode (default: twice the profile's iterations)")
    options(b, cmd_efficiency)
    b = bench.add_parser("budget", help="closure tests within a total simulation budget: a bank, pretraining "
                                        "from it, calibration on the rest")
    b.add_argument("--totals", type=lambda t: [int(v) for v in floats(t)], default=[50000],
                   help="total simulator images per run, comma-separated (default 50000)")
    b.add_argument("--bank-share", type=float, default=BANK_SHARE,
                   help=f"fraction of each total spent on the bank (default {BANK_SHARE}: 30,000 of 50,000)")
    b.add_argument("--pretrain-iterations", type=positive_int,
                   help="pretraining iterations on the bank (default: the profile's bank_iterations; they "
                        "cost no simulation)")
    b.add_argument("--ensemble", type=positive_int, default=workflow.ENSEMBLE_MEMBERS, metavar="K",
                   help="calibrate each run as an ensemble of K members sharing its budget "
                        f"(default {workflow.ENSEMBLE_MEMBERS}; "
                        "1: one calibration)")
    b.add_argument("--seeds", type=positive_int, default=3, help="number of seeds (default 3)")
    b.add_argument("--check", action="store_true", help="exit 1 if a run misses 0.2 true std or 25%% in std")
    options(b, cmd_budget)
    b = bench.add_parser("figures", help="the paper's Fig. 4-7 grids as PNG from one closure test per case study")
    options(b, cmd_figures)
