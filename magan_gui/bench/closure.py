"""Reproduce the paper's case studies and measure them: accuracy, efficiency and figures.

Every benchmark runs the same pipeline as ``magan example`` and the app (``core.workflow``): a
closure-test set drawn from the paper's population (Table I or II), pretraining from nothing,
then calibration.  The
settings come from a profile, which is a preset: ``quick`` (minutes on a 2-core CPU) or ``full``
(batch 256 and long runs, for a GPU).

Distances in parameter space are measured in units of the true standard deviation of each
parameter, so that all parameters weigh the same:

* the bias of the best-match mean and the ratio of best-match to true std (the paper's tables);
* the sliced Wasserstein-1 distance between best-match samples and the true per-image parameters,
  beside the same distance between two independent draws of the true population (its floor);
* a classifier two-sample test: a small network learns to tell best-match samples from true
  parameters, and its held-out accuracy is reported (0.5: indistinguishable).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..core import workflow
from ..core.images import save_grid_png
from ..core.pretraining import PretrainConfig
from ..core.progress import CalibrationSnapshot, PretrainSnapshot, RunControl
from ..core.simulators import load_simulator
from ..core.training import seeded_initialisation
from .paper import (
    CALIBRATION_ITERATIONS,
    FIG4_COLUMNS,
    FIG6_COLUMNS,
    FIG57_COLUMNS,
    PAPER_BEST_MATCH,
    PAPER_TRUTH,
    PRETRAIN_ITERATIONS,
)
from .timing import StageTimer, timing_markdown

PROFILES = ("quick", "full")
FIDELITY_TARGET = 1e-3
# The accuracy targets, in true standard deviations
TARGET_MEAN_BIAS, TARGET_STD_RATIO, TARGET_WORST_BIAS = 0.2, 0.25, 0.4

Log = Callable[[str], None]


def scaled_columns(paper_columns: tuple[float, ...], paper_total: float, iterations: int) -> list[int]:
    """The paper's figure columns moved to a run of ``iterations``, same fractions, at least 1 apart."""
    cols = sorted({max(1, round(c / paper_total * iterations)) for c in paper_columns})
    return [c for c in cols if c <= iterations]


# -- distances in parameter space ----------------------------------------------------------------------
def sliced_wasserstein(a: np.ndarray, b: np.ndarray, projections: int = 256, seed: int = 0) -> float:
    """Mean over random directions of the 1-D Wasserstein-1 distance between the projected samples.

    Both samples should already be standardised; equal-size subsamples are compared.
    """
    rng = np.random.default_rng(seed)
    n = min(len(a), len(b))
    a = a[rng.permutation(len(a))[:n]]
    b = b[rng.permutation(len(b))[:n]]
    directions = rng.normal(size=(a.shape[1], projections))
    directions /= np.linalg.norm(directions, axis=0, keepdims=True)
    pa, pb = np.sort(a @ directions, axis=0), np.sort(b @ directions, axis=0)
    return float(np.abs(pa - pb).mean())


def classifier_two_sample_test(a: np.ndarray, b: np.ndarray, seed: int = 0, steps: int = 400) -> dict[str, float]:
    """Held-out accuracy of a small MLP telling sample ``a`` from sample ``b`` (balanced, half held out).

    Accuracy near 0.5 means the classifier cannot tell them apart.  ``p_value`` is the one-sided
    binomial probability, under "indistinguishable", of an accuracy at least this high.
    """
    rng = np.random.default_rng(seed)
    n = min(len(a), len(b))
    x = np.concatenate([a[rng.permutation(len(a))[:n]], b[rng.permutation(len(b))[:n]]]).astype(np.float32)
    y = np.concatenate([np.zeros(n), np.ones(n)]).astype(np.float32)
    order = rng.permutation(2 * n)
    x, y = torch.from_numpy(x[order]), torch.from_numpy(y[order])
    half = n
    with seeded_initialisation(seed):
        net = nn.Sequential(nn.Linear(x.shape[1], 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = F.binary_cross_entropy_with_logits(net(x[:half]).squeeze(1), y[:half])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        correct = int(((net(x[half:]).squeeze(1) > 0).float() == y[half:]).sum())
    n_test = 2 * n - half
    accuracy = correct / n_test
    z = (correct - 0.5 * n_test) / math.sqrt(0.25 * n_test)
    return {"accuracy": accuracy, "p_value": 0.5 * math.erfc(z / math.sqrt(2)), "n_test": n_test}


def parameter_space_distances(samples: np.ndarray, true_params: np.ndarray, population: tuple, seed: int = 0
                              ) -> dict[str, float]:
    """Sliced Wasserstein and classifier test of best-match samples against the true parameters.

    Everything is standardised by the true per-image parameters' mean and std.  The floor is the
    sliced Wasserstein distance between the true parameters and a fresh draw of the population
    of the same size: what a perfect calibration would score with this many images.
    """
    mu, sd = true_params.mean(axis=0), true_params.std(axis=0, ddof=1)
    z_true, z_samples = (true_params - mu) / sd, (samples - mu) / sd
    mean, std = population
    fresh = np.random.default_rng(seed + 1).normal(mean, std, size=true_params.shape)
    c2st = classifier_two_sample_test(z_samples, z_true, seed=seed)
    return {"sliced_wasserstein": sliced_wasserstein(z_samples, z_true, seed=seed),
            "sliced_wasserstein_floor": sliced_wasserstein((fresh - mu) / sd, z_true, seed=seed),
            "c2st_accuracy": c2st["accuracy"], "c2st_p_value": c2st["p_value"]}


# -- one closure test ----------------------------------------------------------------------------------
@dataclass
class ClosureRun:
    """What one closure test produced, with the snapshots kept for figures and curves."""

    simulator: str
    seed: int
    result: dict[str, Any]
    distances: dict[str, float]
    pretrain_seconds: float
    calibrate_seconds: float
    fidelity_mse: float
    start_scores: list[float] = field(default_factory=list)  # a bank pretraining's tried initialisations
    pretrain_columns: list[tuple[int, np.ndarray]] = field(default_factory=list)
    simulated_grid: np.ndarray | None = None
    calibrate_columns: list[tuple[int, np.ndarray]] = field(default_factory=list)
    true_grid: np.ndarray | None = None
    trace: list[dict[str, Any]] = field(default_factory=list)  # calibration quality as it trains
    stages: list[dict[str, Any]] = field(default_factory=list)  # per stage: seconds, iterations, it/s, GPU busy

    def summary(self) -> dict[str, Any]:
        """JSON-able numbers of this run (no images)."""
        return {"simulator": self.simulator, "seed": self.seed, "pretrain_seconds": round(self.pretrain_seconds, 2),
                "calibrate_seconds": round(self.calibrate_seconds, 2), "fidelity_mse": self.fidelity_mse,
                "parameters": [{k: row.get(k) for k in ("name", "mean", "std", "true_mean", "true_std",
                                                        "bias_in_true_std", "std_ratio", "well_constrained")}
                               for row in self.result["parameters"]],
                "image_distance": self.result["calibration"]["image_distance"],
                "image_check": self.result["image_check"], **self.distances,
                "stages": self.stages, "trace": self.trace}


def _trace_point(snap: CalibrationSnapshot, true_mean: np.ndarray, true_std: np.ndarray) -> dict[str, Any]:
    return {"iteration": snap.iteration, "seconds": round(snap.elapsed, 2),
            "max_abs_bias": float(np.max(np.abs(snap.means - true_mean) / true_std)),
            "max_std_error": float(np.max(np.abs(snap.stds / true_std - 1.0))),
            "image_distance": snap.image_distance}


def closure_test(simulator_name: str, seed: int, profile: str, device: torch.device | str,
                 n_true: int = workflow.EXAMPLE_IMAGES, figures: bool = False, log: Log = print,
                 pretrain: PretrainConfig | None = None,
                 calibrate: workflow.CalibrationConfig | None = None, bank: str | Path | None = None,
                 members: int = 1) -> ClosureRun:
    """The paper's closure test from nothing: true set, pretraining, calibration, distances.

    The settings are the profile's (a preset), or ``pretrain`` / ``calibrate`` when given; the
    seed is ``seed`` in both stages.  With ``bank`` (a bank file of the simulator) pretraining
    learns from it; ``members`` > 1 calibrates as an ensemble.
    """
    simulator = load_simulator(simulator_name)
    configs = workflow.stage_configs(simulator.name, profile, seed=seed)
    configs = workflow.StageConfigs(replace(pretrain or configs.pretrain, seed=seed),
                                    replace(calibrate or configs.calibrate, seed=seed))
    timer = StageTimer(device)
    timer.begin("true images")
    true = workflow.example_closure_set(simulator, seed, device, n_true)
    pre_columns = FIG6_COLUMNS if simulator.name == "circles" else FIG4_COLUMNS
    pre_at = scaled_columns(pre_columns, PRETRAIN_ITERATIONS[simulator.name],
                            configs.pretrain.iterations) if figures else []
    cal_at = scaled_columns(FIG57_COLUMNS, CALIBRATION_ITERATIONS, configs.calibrate.iterations) if figures else []
    run = ClosureRun(simulator.name, seed, {}, {}, 0.0, 0.0, float("nan"))
    t_mean, t_std = true.params.mean(axis=0), true.params.std(axis=0, ddof=1)

    def observe(snap) -> None:
        if snap.final:
            return
        if isinstance(snap, PretrainSnapshot) and snap.iteration in pre_at:
            run.pretrain_columns.append((snap.iteration, snap.emulated))
            run.simulated_grid = snap.simulated
        elif isinstance(snap, CalibrationSnapshot):
            run.trace.append(_trace_point(snap, t_mean, t_std))
            if snap.iteration in cal_at:
                run.calibrate_columns.append((snap.iteration, snap.generated))
                run.true_grid = snap.true

    started = time.perf_counter()
    timer.begin("pretraining")

    def pretrained(pretraining: workflow.Pretraining) -> None:
        run.pretrain_seconds = time.perf_counter() - started
        timer.begin("calibration")
        pre = timer.stages[-2]
        pre.count(pretraining.emulator.meta.get("iteration", 0), pretraining.emulator.meta.get("wall_time", 0.0))
        run.fidelity_mse = float(pretraining.emulator.meta["fidelity_mse"])
        run.start_scores = pretraining.emulator.meta.get("start_scores", [])
        rate = pre.iterations_per_second or float("nan")
        log(f"  {simulator.name} seed {seed}: pretrained ({pretraining.mode}, {configs.pretrain.iterations} it) in "
            f"{run.pretrain_seconds:.0f} s ({rate:.1f} it/s), held-out {pretraining.emulator.meta['fidelity_metric']} "
            f"{run.fidelity_mse:.5f}" + (f"; initialisation {pretraining.emulator.meta['config']['start']} of "
                                         f"{len(run.start_scores)} tried, their scores "
                                         + ", ".join(f"{v:.5f}" for v in run.start_scores) if run.start_scores
                                         else ""))

    done = workflow.run_pipeline(simulator, true, configs, device, observer=observe, pretrain_snapshots=pre_at,
                                 calibrate_snapshots=cal_at, on_pretrained=pretrained, bank=bank,
                                 members=members)
    run.calibrate_seconds = time.perf_counter() - started - run.pretrain_seconds
    timer.end()
    outcome = done.calibration.outcome
    timer.stages[-1].count(outcome.iteration, outcome.wall_time)
    run.stages = timer.as_list()
    run.result = done.calibration.result
    run.distances = parameter_space_distances(done.calibration.outcome.samples, true.params,
                                              simulator.example_population, seed=seed)
    worst = max(abs(r["bias_in_true_std"]) for r in run.result["parameters"])
    ratios = ", ".join(f"{r['std_ratio']:.2f}" for r in run.result["parameters"])
    rate = timer.stages[-1].iterations_per_second or float("nan")
    log(f"  {simulator.name} seed {seed}: calibrated ({configs.calibrate.iterations} it) in "
        f"{run.calibrate_seconds:.0f} s ({rate:.1f} it/s); worst |bias| {worst:.2f} std, std ratios {ratios}; sliced W "
        f"{run.distances['sliced_wasserstein']:.3f} (floor {run.distances['sliced_wasserstein_floor']:.3f}), "
        f"C2ST accuracy {run.distances['c2st_accuracy']:.3f}; image distance {run.result['image_check']['ratio']:.2f} "
        f"x the true images' own, {'converged' if run.result['converged'] else 'NOT CONVERGED'}")
    return run


def write_figures(run: ClosureRun, folder: str | Path, prefix: str = "") -> list[Path]:
    """The paper's Fig. 4/6 (emulator vs simulator) and Fig. 5/7 (generated vs true) grids as PNG."""
    folder = Path(folder)
    paths = []
    pre_fig, cal_fig = ("fig6", "fig7") if run.simulator == "circles" else ("fig4", "fig5")
    if run.pretrain_columns and run.simulated_grid is not None:
        cols = [img for _, img in run.pretrain_columns] + [run.simulated_grid]
        caps = [_short(i) for i, _ in run.pretrain_columns] + ["sim"]
        paths.append(save_grid_png(folder / f"{prefix}{pre_fig}_{run.simulator}_pretraining.png", cols, caps,
                                   f"{run.simulator}: emulator after N pretraining iterations vs simulator"))
    if run.calibrate_columns and run.true_grid is not None:
        cols = [img for _, img in run.calibrate_columns] + [run.true_grid]
        caps = [_short(i) for i, _ in run.calibrate_columns] + ["true"]
        paths.append(save_grid_png(folder / f"{prefix}{cal_fig}_{run.simulator}_calibration.png", cols, caps,
                                   f"{run.simulator}: simulated from G after N iterations vs true"))
    return paths


def _short(iteration: int) -> str:
    return f"{iteration / 1000:.3g}k" if iteration >= 1000 else str(iteration)


# -- accuracy over seeds -------------------------------------------------------------------------------
def summarise_accuracy(runs: list[ClosureRun]) -> dict[str, Any]:
    """Per parameter: mean, spread and worst over seeds of bias and std ratio, with the paper's figures."""
    simulator = runs[0].simulator
    names = [r["name"] for r in runs[0].result["parameters"]]
    paper_mean, paper_std = PAPER_BEST_MATCH[simulator]
    true_mean, true_std = PAPER_TRUTH[simulator]
    rows = []
    for i, name in enumerate(names):
        bias = np.array([r.result["parameters"][i]["bias_in_true_std"] for r in runs])
        ratio = np.array([r.result["parameters"][i]["std_ratio"] for r in runs])
        rows.append({
            "name": name, "true_mean": true_mean[i], "true_std": true_std[i],
            "best_match_mean": float(np.mean([r.result["parameters"][i]["mean"] for r in runs])),
            "best_match_std": float(np.mean([r.result["parameters"][i]["std"] for r in runs])),
            "bias_mean": float(bias.mean()), "abs_bias_mean": float(np.abs(bias).mean()),
            "bias_spread": float(bias.std(ddof=1)) if len(bias) > 1 else 0.0,
            "abs_bias_worst": float(np.abs(bias).max()),
            "std_ratio_mean": float(ratio.mean()), "std_ratio_spread": float(ratio.std(ddof=1)) if len(ratio) > 1
            else 0.0, "std_ratio_worst": float(ratio[np.argmax(np.abs(ratio - 1))]),
            "well_constrained": all(r.result["parameters"][i]["well_constrained"] for r in runs),
            "paper_mean": paper_mean[i], "paper_std": paper_std[i],
            "paper_bias": (paper_mean[i] - true_mean[i]) / true_std[i], "paper_std_ratio": paper_std[i] / true_std[i],
        })
        row = rows[-1]
        row["meets_target"] = bool(row["abs_bias_mean"] <= TARGET_MEAN_BIAS
                                   and abs(row["std_ratio_mean"] - 1) <= TARGET_STD_RATIO
                                   and row["abs_bias_worst"] <= TARGET_WORST_BIAS)
    dist = {k: [r.distances[k] for r in runs] for k in runs[0].distances}
    return {"simulator": simulator, "seeds": [r.seed for r in runs], "parameters": rows,
            "distances": {k: {"mean": float(np.mean(v)), "spread": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0}
                          for k, v in dist.items()},
            "seconds_per_seed": float(np.mean([r.pretrain_seconds + r.calibrate_seconds for r in runs])),
            "stages": mean_stages([r.stages for r in runs]),
            "fidelity_mse": float(np.mean([r.fidelity_mse for r in runs])),
            "meets_targets": all(r["meets_target"] for r in rows)}


def mean_stages(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each stage's timing averaged over runs (the GPU busy share over the runs that read it)."""
    out = []
    for k, first in enumerate(runs[0] if runs else []):
        rows = [r[k] for r in runs if len(r) > k]
        busy = [r["gpu_busy"] for r in rows if r["gpu_busy"] is not None]
        rates = [r["iterations_per_second"] for r in rows if r["iterations_per_second"] is not None]
        out.append({"stage": first["stage"], "seconds": round(float(np.mean([r["seconds"] for r in rows])), 2),
                    "iterations": first["iterations"],
                    "loop_seconds": round(float(np.mean([r["loop_seconds"] for r in rows])), 2),
                    "iterations_per_second": round(float(np.mean(rates)), 2) if rates else None,
                    "gpu_busy": round(float(np.mean(busy)), 3) if busy else None})
    return out


def accuracy_markdown(summaries: list[dict[str, Any]]) -> str:
    """Short Markdown tables of the accuracy summaries (the paper's Tables I and II, measured)."""
    out = []
    for s in summaries:
        out.append(f"**{s['simulator']}**, seeds {', '.join(map(str, s['seeds']))} "
                   f"({s['seconds_per_seed']:.0f} s per seed, held-out emulator MSE {s['fidelity_mse']:.5f})\n")
        out.append("| parameter | true μ / σ | best match μ / σ (mean of seeds) | paper μ / σ | "
                   "bias, mean \\|·\\| (worst) | paper bias | std ratio ± spread | paper std ratio | target |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for r in s["parameters"]:
            flag = "" if r["well_constrained"] else " (weakly constrained)"
            out.append(f"| {r['name']}{flag} | {r['true_mean']:g} / {r['true_std']:g} | "
                       f"{r['best_match_mean']:.3f} / {r['best_match_std']:.3f} | {r['paper_mean']:g} / "
                       f"{r['paper_std']:g} | {r['abs_bias_mean']:.3f} ({r['abs_bias_worst']:.3f}) | "
                       f"{r['paper_bias']:+.3f} | {r['std_ratio_mean']:.2f} ± {r['std_ratio_spread']:.2f} | "
                       f"{r['paper_std_ratio']:.2f} | {'met' if r['meets_target'] else 'missed'} |")
        d = s["distances"]
        out.append(f"\nSliced Wasserstein (true-std units) {d['sliced_wasserstein']['mean']:.3f} ± "
                   f"{d['sliced_wasserstein']['spread']:.3f} (floor for this many images "
                   f"{d['sliced_wasserstein_floor']['mean']:.3f}); classifier two-sample test accuracy "
                   f"{d['c2st_accuracy']['mean']:.3f} ± {d['c2st_accuracy']['spread']:.3f} (0.5 = indistinguishable)."
                   "\n")
        if s.get("stages"):
            out.append("Time per seed, mean over seeds:\n\n" + timing_markdown(s["stages"]) + "\n")
    return "\n".join(out)


# -- efficiency ----------------------------------------------------------------------------------------
def pretraining_curve(simulator_name: str, mode: str, config: PretrainConfig, device: torch.device,
                      stop_at: float | None = None, log: Log = print) -> dict[str, Any]:
    """Held-out fidelity against iterations and wall time for one pretraining mode.

    With ``stop_at`` the run ends once the held-out MSE reaches it (the rest adds no information
    to "how long until"); otherwise it runs all ``config.iterations``.
    """
    simulator = load_simulator(simulator_name)
    control = RunControl()

    def watch(snap: PretrainSnapshot) -> None:
        if snap.fidelity_mse is not None and snap.fidelity_mse <= (stop_at or -1):
            control.stop()

    pretraining = workflow.pretrain(simulator, replace(config, mode=mode), device,
                                    observer=watch if stop_at else None, control=control)
    h = pretraining.history
    iterations_run = h["fidelity_step"][-1]
    first = next((k for k, m in enumerate(h["fidelity_mse"]) if m <= FIDELITY_TARGET), None)
    curve = {"mode": pretraining.mode, "steps": h["fidelity_step"], "mse": h["fidelity_mse"],
             "seconds": [round(t, 3) for t in h["fidelity_time"]], "iterations_run": iterations_run,
             "final_mse": h["fidelity_mse"][-1],
             "target": FIDELITY_TARGET,
             "iterations_to_target": h["fidelity_step"][first] if first is not None else None,
             "seconds_to_target": round(h["fidelity_time"][first], 2) if first is not None else None}
    where = (f"reached {FIDELITY_TARGET} at {curve['iterations_to_target']} it, {curve['seconds_to_target']:.0f} s"
             if first is not None else f"did not reach {FIDELITY_TARGET} in {iterations_run} it")
    log(f"  {simulator_name} {pretraining.mode}: {where} (final MSE {curve['final_mse']:.5f})")
    return curve


def efficiency(simulator_name: str, profile: str, device: torch.device, seed: int = 0,
               max_iterations: int | None = None, log: Log = print) -> dict[str, Any]:
    """Fidelity curves of the paper's Siamese pretraining and the fast mode, then calibration quality.

    Both modes run from the same seed (same initial emulator, same held-out set) for up to
    ``max_iterations`` (default: twice the profile's), stopping once the held-out MSE reaches the
    target.  The calibration curve then comes from a closure test with the profile's settings.
    """
    pre_cfg = workflow.stage_configs(load_simulator(simulator_name).name, profile).pretrain
    budget = max_iterations or 2 * pre_cfg.iterations
    cfg = replace(pre_cfg, seed=seed, iterations=budget, eval_every=max(10, min(pre_cfg.eval_every, budget // 80)))
    curves = {}
    for mode in ("siamese", "pixel"):
        curves[mode] = pretraining_curve(simulator_name, mode, cfg, device, stop_at=FIDELITY_TARGET, log=log)
    run = closure_test(simulator_name, seed, profile, device, log=log)
    return {"simulator": simulator_name, "profile": profile, "seed": seed, "pretraining": curves,
            "calibration": {"fidelity_mse": run.fidelity_mse, "trace": run.trace,
                            "final": run.summary()["parameters"], "pretrain_seconds": run.pretrain_seconds,
                            "calibrate_seconds": run.calibrate_seconds}}


def efficiency_markdown(results: list[dict[str, Any]]) -> str:
    """Markdown: iterations and seconds to the fidelity target per mode; calibration quality over time."""
    out = [f"| case study | mode | iterations to MSE {FIDELITY_TARGET} | seconds to it | final MSE (iterations run) |",
           "|---|---|---|---|---|"]
    for r in results:
        for mode, c in r["pretraining"].items():
            label = "siamese (paper)" if mode == "siamese" else mode
            it = c["iterations_to_target"] if c["iterations_to_target"] is not None else "not reached"
            sec = f"{c['seconds_to_target']:.0f}" if c["seconds_to_target"] is not None else "–"
            out.append(f"| {r['simulator']} | {label} | {it} | {sec} | {c['final_mse']:.5f} ({c['iterations_run']}) |")
    out.append("\nCalibration quality as it trains (generator samples at progress snapshots; "
               "worst parameter, in true std):\n")
    out.append("| case study | iteration | seconds | worst \\|bias\\| | worst \\|std ratio − 1\\| |")
    out.append("|---|---|---|---|---|")
    for r in results:
        trace = r["calibration"]["trace"]
        if not trace:
            continue
        total = trace[-1]["iteration"]
        picked = {min(range(len(trace)), key=lambda k, f=frac: abs(trace[k]["iteration"] - f * total))
                  for frac in (0.1, 0.25, 0.5, 0.75, 1.0)}
        for point in (trace[k] for k in sorted(picked)):
            out.append(f"| {r['simulator']} | {point['iteration']} | {point['seconds']:.0f} | "
                       f"{point['max_abs_bias']:.2f} | {point['max_std_error']:.2f} |")
    return "\n".join(out) + "\n"
