"""Which emulator loss learns a black-box stochastic simulator's randomness best from a bank?

Trains the same emulator network on the same bank, for the same iterations, with each loss:

- ``energy``       the product's ``energy`` pretraining mode: energy score of the whole image plus
                   multi-scale CRPS (pixels, pixel blocks, the image's total), latent vector plus a
                   per-pixel latent field;
- ``energy-pixel`` the whole-image score plus the per-pixel CRPS only (the mode's first version);
- ``energy-vector``the product's loss with the latent vector only (no per-pixel field);
- ``adversarial``  a conditional GAN: a critic sees (image, parameters) pairs, bank against
                   emulated, non-saturating loss; latent vector plus field;
- ``pixel``        pixel MSE with no latent (what a deterministic emulator learns: the mean image).

Then judges every emulator the same way, against fresh simulations: at held-out parameter sets,
many simulator draws against as many emulator draws, comparing per-pixel mean and per-pixel
standard deviation (relative to the simulator's own pixel spread), and each image's total
intensity (the mean's error in units of the simulator's spread of totals, and that spread's
ratio).  The simulator against a second set of its own draws gives the floor that finite samples
allow.  The losing losses are not part of the product; this script keeps the
comparison reproducible:

    PYTHONPATH=. python3 scripts/compare_black_box_losses.py \
        --simulator magan_gui/examples/shower_plugin.py:Shower --bank shower.h5 --out losses.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from magan_gui.core.bank import build_bank, load_bank
from magan_gui.core.networks import Emulator, NetworkSizes
from magan_gui.core.pretraining import (
    LATENT_DIM_BLACK_BOX,
    SATURATION_LIMIT,
    bank_split,
    cosine_lr_factor,
    energy_scores,
)
from magan_gui.core.simulators import load_simulator
from magan_gui.core.training import seeded_initialisation, simulate_for_networks

HELDOUT = 512  # bank rows held out, as pretraining holds them out
LOSSES = ("energy", "energy-pixel", "energy-vector", "adversarial", "pixel")


class ConditionalCritic(nn.Module):
    """Tells bank (image, parameters) pairs from emulated ones: parameters enter as constant channels."""

    def __init__(self, n_params: int, shape: tuple[int, int], channels: int = 32):
        super().__init__()
        c = channels
        self.conv = nn.Sequential(
            nn.Conv2d(1 + n_params, c, 3, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(c, 2 * c, 3, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * c, 4 * c, 3, 2, 1), nn.LeakyReLU(0.2), nn.Flatten())
        n_features = self.conv(torch.zeros(1, 1 + n_params, *shape)).shape[1]
        self.out = nn.Sequential(nn.Linear(n_features + n_params, 128), nn.LeakyReLU(0.2), nn.Linear(128, 1))

    def forward(self, images: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        planes = r[:, :, None, None].expand(-1, -1, *images.shape[2:])
        return self.out(torch.cat([self.conv(torch.cat([images, planes], 1)), r], 1)).squeeze(1)


def train(loss: str, sim, bank, iterations: int, batch: int, seed: int) -> tuple[Emulator, float]:
    """One emulator trained on the bank with ``loss``; returns it and the seconds it took."""
    space, shape = sim.space, tuple(sim.image_shape)
    bank_r = space.to_normalised(torch.from_numpy(bank.params))
    bank_images = torch.from_numpy(bank.images).unsqueeze(1) * 2.0 - 1.0
    train_rows = bank_split(len(bank), HELDOUT, seed)[1]
    with seeded_initialisation(seed):
        emulator = Emulator(len(space), shape, NetworkSizes.for_image(shape),
                            latent_dim=0 if loss == "pixel" else LATENT_DIM_BLACK_BOX,
                            latent_field=loss in ("energy", "energy-pixel", "adversarial"))
        critic = ConditionalCritic(len(space), shape) if loss == "adversarial" else None
    adversarial = critic is not None
    opt_e = torch.optim.Adam(emulator.parameters(), lr=2e-4 if adversarial else 1e-3,
                             betas=(0.5, 0.999) if adversarial else (0.9, 0.999))
    opt_c = torch.optim.Adam(critic.parameters(), lr=2e-4, betas=(0.5, 0.999)) if adversarial else None
    gen = torch.Generator().manual_seed(seed)

    def latent(n: int) -> torch.Tensor | None:
        return torch.randn(n, emulator.latent_dim, generator=gen) if emulator.latent_dim else None

    start = time.perf_counter()
    for it in range(iterations):
        if not adversarial:  # the product's schedule for the regression-like losses
            for group in opt_e.param_groups:
                group["lr"] = 1e-3 * cosine_lr_factor(it / iterations)
        rows = train_rows[torch.randint(len(train_rows), (batch,), generator=gen)]
        r, simulated = bank_r[rows], bank_images[rows]
        logits = emulator.logits(r, None, latent(batch))
        emulated = torch.tanh(logits)
        e_loss = F.relu(logits.abs() - SATURATION_LIMIT).pow(2).mean()
        if loss.startswith("energy"):
            twin = emulator(r, None, latent(batch))
            image_score, scales_score = energy_scores(emulated, twin, simulated)
            if loss == "energy-pixel":
                scales_score = (0.5 * ((emulated - simulated).abs() + (twin - simulated).abs())
                                - 0.5 * (emulated - twin).abs())
            e_loss = e_loss + image_score.mean() / math.sqrt(simulated[0].numel()) + scales_score.mean()
        elif loss == "pixel":
            e_loss = e_loss + F.mse_loss(emulated, simulated)
        else:
            c_loss = (F.binary_cross_entropy_with_logits(critic(simulated, r), torch.full((batch,), 0.95))
                      + F.binary_cross_entropy_with_logits(critic(emulated.detach(), r), torch.zeros(batch)))
            opt_c.zero_grad(set_to_none=True)
            c_loss.backward()
            opt_c.step()
            critic.requires_grad_(False)
            e_loss = e_loss + F.binary_cross_entropy_with_logits(critic(emulated, r), torch.ones(batch))
            critic.requires_grad_(True)
        opt_e.zero_grad(set_to_none=True)
        e_loss.backward()
        opt_e.step()
    return emulator.eval(), time.perf_counter() - start


@torch.no_grad()
def judge(draw, reference: torch.Tensor, r: torch.Tensor, draws: int) -> dict[str, float]:
    """Compare ``draw(r_repeated)`` with ``reference`` (K*draws images, draws per parameter set)."""
    k = r.shape[0]
    images = draw(r.repeat_interleave(draws, 0)).view(k, draws, -1)
    ref = reference.view(k, draws, -1)
    noise = ref.std(1).pow(2).mean(1).sqrt()  # the simulator's pixel spread per parameter set
    mean_err = ((images.mean(1) - ref.mean(1)).pow(2).mean(1).sqrt() / noise).mean()
    std_err = ((images.std(1) - ref.std(1)).pow(2).mean(1).sqrt() / noise).mean()
    # each image's total: its mean error in units of the simulator's spread of totals, and the spread's ratio
    totals, ref_totals = images.sum(2), ref.sum(2)
    total_bias = ((totals.mean(1) - ref_totals.mean(1)).abs() / ref_totals.std(1)).mean()
    total_spread = (totals.std(1) / ref_totals.std(1)).mean()
    return {"mean_error": float(mean_err), "std_error": float(std_err), "total_bias": float(total_bias),
            "total_std_ratio": float(total_spread)}


def emulation(emulator: Emulator, seed: int):
    """A function drawing one emulated image per row of normalised parameters, in chunks."""
    gen = torch.Generator().manual_seed(seed)

    def draw(r: torch.Tensor) -> torch.Tensor:
        lat = torch.randn(len(r), emulator.latent_dim, generator=gen) if emulator.latent_dim else None
        return torch.cat([emulator(r[s:s + 1024], None, None if lat is None else lat[s:s + 1024])
                          for s in range(0, len(r), 1024)])
    return draw


@torch.no_grad()
def heldout_crps(emulator: Emulator, sim, bank, seed: int) -> float:
    """The product's fidelity figure, the multi-scale CRPS, on the bank's held-out rows."""
    rows = bank_split(len(bank), HELDOUT, seed)[0]
    r = sim.space.to_normalised(torch.from_numpy(bank.params))[rows]
    observed = torch.from_numpy(bank.images).unsqueeze(1)[rows] * 2.0 - 1.0
    gen = torch.Generator().manual_seed(seed + 7927)

    def draw() -> torch.Tensor:
        lat = torch.randn(len(rows), emulator.latent_dim, generator=gen) if emulator.latent_dim else None
        return emulator(r, None, lat)
    return float(energy_scores(draw(), draw(), observed)[1].mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--simulator", required=True)
    parser.add_argument("--bank", required=True, help="bank file (made with --bank-size images if missing)")
    parser.add_argument("--bank-size", type=int, default=40000)
    parser.add_argument("--losses", default=",".join(LOSSES))
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--heldout-sets", type=int, default=16, help="held-out parameter sets judged")
    parser.add_argument("--draws", type=int, default=256, help="draws per held-out parameter set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the table as JSON here")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    sim = load_simulator(args.simulator)
    build_bank(sim, args.bank, args.bank_size, seed=args.seed, resume=Path(args.bank).exists())
    bank = load_bank(args.bank, sim)
    held = torch.Generator().manual_seed(args.seed + 99)
    r = torch.rand(args.heldout_sets, len(sim.space), generator=held) * 1.8 - 0.9  # inside the box
    reference = simulate_for_networks(sim, r.repeat_interleave(args.draws, 0), None).flatten(1)
    rows = [{"loss": "simulator vs itself (floor)", "seconds": 0.0, "crps": None,
             **judge(lambda rr: simulate_for_networks(sim, rr, None), reference, r, args.draws)}]
    print(f"{'loss':<30} {'mean err':>9} {'std err':>9} {'total bias':>10} {'total std':>9} {'ms-CRPS':>8} "
          f"{'seconds':>8}")

    def show(row: dict) -> None:
        crps = "" if row["crps"] is None else f"{row['crps']:.4f}"
        print(f"{row['loss']:<30} {row['mean_error']:9.3f} {row['std_error']:9.3f} {row['total_bias']:10.3f} "
              f"{row['total_std_ratio']:9.2f} {crps:>8} {row['seconds']:8.0f}", flush=True)
    show(rows[0])
    for loss in args.losses.split(","):
        if loss not in LOSSES:
            print(f"unknown loss {loss!r}: use {', '.join(LOSSES)}", file=sys.stderr)
            return 2
        emulator, seconds = train(loss, sim, bank, args.iterations, args.batch_size, args.seed)
        rows.append({"loss": loss, "seconds": seconds, "crps": heldout_crps(emulator, sim, bank, args.seed),
                     **judge(emulation(emulator, args.seed + 5), reference, r, args.draws)})
        show(rows[-1])
    if args.out is not None:
        args.out.write_text(json.dumps({"simulator": args.simulator, "bank": str(args.bank), "bank_size": len(bank),
                                        "iterations": args.iterations, "batch_size": args.batch_size,
                                        "heldout_sets": args.heldout_sets, "draws": args.draws, "seed": args.seed,
                                        "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
