"""Active learning against random picks at equal DFT calls.  From the same few labelled seed structures, each arm
explores with its own current model (the campaign's Langevin MD, a schedule of temperatures, a trajectory stopping
at the upper trust level), labels as many frames as the active arm chose (the active arm: the campaign's rule —
uncertainty between the trust levels, farthest-point diversity, the cap; the random arm: uniform picks from its own
exploration), retrains on all its labels, and is measured on a held-out set: MD snapshots of the reference
potential at 300-1500 K in cells larger than the seeds.  Several seeds.  EMT (Cu) labels, so the whole comparison
runs in minutes on 2 cores.  Prints JSON; ``--plot`` writes both curves (mean and spread over the seeds).

    python benchmarks/active_learning.py [--seeds 3] [--iterations 5] [--per-iteration 4]
                                         [--uncertainty committee|grade] [--plot al.png] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

from sus2_model import load_model
from sus2_workflows.spec import ActiveLearningSpec
from sus2_workflows.steps.active import explore, select_uncertain, uncertainties, uncertainty_measure
from sus2_workflows.steps.seeds import generate_seeds
from sus2_workflows.steps.train import held_out_errors, train_model

TRAINING = {"max_rank": 2, "n_radial": 2, "max_level": 12, "radial_basis_size": 6, "cutoff": 4.5, "epochs": 30,
            "valid_fraction": 0.0, "threads": 1}
TEMPERATURES = (300.0, 900.0, 1500.0)  # K: the exploration schedule and the held-out snapshots'
MD_STEPS, SAMPLE_EVERY = 40, 5


def labelled(atoms: Atoms) -> Atoms:
    """``atoms`` with EMT's energy and forces attached (a DFT call of this benchmark)."""
    atoms = atoms.copy()
    atoms.calc = EMT()
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    return atoms


def held_out_set(per_temperature: int = 5) -> list[Atoms]:
    """EMT MD snapshots of fcc Cu (2x2x2 conventional cells, 32 atoms) at each temperature of the schedule."""
    rng = np.random.default_rng(12345)
    images = []
    for temperature in TEMPERATURES:
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2)
        atoms.calc = EMT()
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
        dynamics = Langevin(atoms, 2.0 * units.fs, temperature_K=temperature, friction=0.02, rng=rng)
        dynamics.run(100)  # equilibrate
        for _ in range(per_temperature):
            dynamics.run(25)
            images.append(labelled(atoms))
    return images


def seed_structures(seed: int) -> list[Atoms]:
    """Three labelled seeds: strained and rattled 8-atom cells."""
    return [labelled(a) for a in generate_seeds("Cu", "fcc", None, (1, 1, 2), [-0.03, 0.0, 0.03], 0.05, 1,
                                                seed=seed)]


def run_arm(arm: str, seed: int, held_out: list[Atoms], settings: ActiveLearningSpec, iterations: int,
            counts: list[int] | None, folder: Path) -> tuple[list[dict], list[int]]:
    """One arm's loop: per iteration its model's held-out errors, its DFT calls so far and wall time; the active
    arm returns how many frames it labelled each iteration (the random arm labels as many)."""
    rng = np.random.default_rng(seed)
    data = seed_structures(seed)
    starts = [a.copy() for a in data]
    lower, upper = settings.trust_levels()
    history, chosen_counts = [], []
    start_time = time.perf_counter()
    for iteration in range(iterations + 1):
        info = train_model(data, {**TRAINING, "seed": seed}, folder / f"{arm}-{seed}-{iteration}")
        model = load_model(info["model_path"])
        errors = held_out_errors(model, held_out)
        history.append({"iteration": iteration, "dft_calls": len(data), "force_mae_ev_a": errors["force_mae_ev_a"],
                        "energy_mae_mev_atom": errors["energy_mae_mev_atom"],
                        "wall_s": round(time.perf_counter() - start_time, 1)})
        if iteration == iterations or (counts is not None and counts[iteration] == 0):
            break
        measure = uncertainty_measure(model, data, settings.uncertainty, settings.committee_size, seed=iteration)
        frames = explore(model, starts, TEMPERATURES, MD_STEPS, SAMPLE_EVERY, seed=seed * 100 + iteration,
                         uncertainty=measure, upper=upper)
        if counts is None:  # the active arm: the campaign's rule
            values = uncertainties(frames, measure)
            picked = select_uncertain(model, frames, values, lower, upper, settings.max_new_per_iteration,
                                      first_per_trajectory=settings.uncertainty == "grade")
            chosen_counts.append(len(picked))
            if not picked:
                break
        else:
            picked = [frames[i] for i in rng.choice(len(frames), size=min(counts[iteration], len(frames)),
                                                    replace=False)]
        data += [labelled(a) for a in picked]
    return history, chosen_counts


def plot(results: dict, path: Path) -> None:
    """Held-out force MAE against DFT calls, mean over seeds with the spread, for both arms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for arm, colour in (("active", "tab:blue"), ("random", "tab:orange")):
        runs = results["runs"][arm]
        length = min(len(r) for r in runs)
        calls = np.mean([[h["dft_calls"] for h in r[:length]] for r in runs], axis=0)
        errors = np.array([[h["force_mae_ev_a"] for h in r[:length]] for r in runs])
        ax.plot(calls, errors.mean(axis=0), "o-", color=colour, label=f"{arm} ({len(runs)} seeds)")
        ax.fill_between(calls, errors.min(axis=0), errors.max(axis=0), color=colour, alpha=0.2)
    ax.set_xlabel("DFT calls (labelled structures)")
    ax.set_ylabel("held-out force MAE (eV/Å)")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--per-iteration", type=int, default=4, help="the cap of frames labelled per iteration")
    parser.add_argument("--uncertainty", choices=["committee", "grade"], default="committee")
    parser.add_argument("--plot", type=Path, help="a PNG of both curves")
    parser.add_argument("--json", action="store_true", help="(the output is always JSON)")
    args = parser.parse_args()
    settings = ActiveLearningSpec(uncertainty=args.uncertainty, max_new_per_iteration=args.per_iteration,
                                  committee_trust=(0.02, 1.0), grade_threshold=2.0, grade_break=50.0)
    held_out = held_out_set()
    runs: dict[str, list[list[dict]]] = {"active": [], "random": []}
    with tempfile.TemporaryDirectory(prefix="sus2-al-bench-") as folder:
        for seed in range(args.seeds):
            active, counts = run_arm("active", seed, held_out, settings, args.iterations, None, Path(folder))
            random, _ = run_arm("random", seed, held_out, settings, args.iterations, counts + [0], Path(folder))
            runs["active"].append(active)
            runs["random"].append(random)
    final = {arm: [r[-1] for r in rs] for arm, rs in runs.items()}
    results = {
        "labeler": "EMT (Cu)", "uncertainty": args.uncertainty, "trust_levels": list(settings.trust_levels()),
        "per_iteration": args.per_iteration, "held_out": {"structures": len(held_out), "atoms": 32,
                                                          "temperatures_k": list(TEMPERATURES)},
        "training": TRAINING, "runs": runs,
        "final": {arm: {"dft_calls": [h["dft_calls"] for h in f],
                        "force_mae_ev_a": [round(h["force_mae_ev_a"], 4) for h in f]} for arm, f in final.items()},
        "active_lower_on_every_seed": all(a["force_mae_ev_a"] < r["force_mae_ev_a"]
                                          for a, r in zip(final["active"], final["random"])),
        "mean_final_force_mae_ev_a": {arm: round(float(np.mean([h["force_mae_ev_a"] for h in f])), 4)
                                      for arm, f in final.items()},
    }
    if args.plot:
        plot(results, args.plot)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
