"""Starting points from the data: per-pair scaling from nearest-neighbour distances, composition shifts,
descriptor normalisation and per-task shifts (or the model to fine-tune)."""

from __future__ import annotations

import numpy as np
import torch
from ase import Atoms

from ..model import Sus2Potential
from ..neighbors import build_batch
from ..predict import load_model, predict
from ..templates import untrained_mtp
from .config import ConfigError, TrainConfig
from ..repulsion import repulsion_onsets
from .data import nearest_neighbour_stats, reference_energies, shortest_pair_distances, species_of


def initial_model(config: TrainConfig, train: list[Atoms]) -> Sus2Potential:
    """A fresh model whose scaling and shifts are initialised from the data, or the model to fine-tune."""
    if config.init_model:
        model = load_model(config.init_model)
    else:
        species = species_of(train)
        mtp = untrained_mtp(len(species), config.max_rank, config.n_radial, config.max_level,
                            config.radial_basis_size, min_dist=0.0, max_dist=config.cutoff,
                            scaling_map=config.scaling_map, seed=config.seed)
        model = Sus2Potential(mtp, species)
        init_scaling_from_data(model, train)
        with torch.no_grad():
            model.shift.copy_(torch.as_tensor(reference_energies(train, species)) - 1.0)
        normalise_descriptors(model, train)
    missing = sorted(set(species_of(train)) - set(model.species))
    if missing:
        raise ConfigError(f"training data holds elements {missing} that the model to fine-tune lacks")
    if config.repulsion:
        init_repulsion(model, train)
    for name in config.tasks:
        model.add_task(name)
    return model


def init_scaling_from_data(model: Sus2Potential, images: list[Atoms]) -> None:
    """Per-pair universal scaling from nearest-neighbour distances: r0 at the typical nearest-neighbour distance,
    alpha so that the cutoff range maps onto tanh's useful range, channels of increasing stiffness."""
    stats = nearest_neighbour_stats(images, model.species, model.r_cut)
    c = model.species_count
    typical = float(np.median([s[0] for s in stats.values()])) if stats else 0.5 * model.r_cut
    with torch.no_grad():
        for a in range(c):
            for b in range(c):
                median, spread, shortest = stats.get((a, b), stats.get((b, a), (typical, 0.2, typical)))
                r0 = 0.5 * (median + shortest)
                span = max(model.r_cut - r0, 4.0 * spread, 0.5)
                for k in range(model.n_channels):
                    model.r0[k, a, b] = r0
                    model.alpha[k, a, b] = (2.0 + 2.0 * k) / span
        model.hyper["min_dist"] = float(min((s[2] for s in stats.values()), default=0.0))


def init_repulsion(model: Sus2Potential, images: list[Atoms]) -> None:
    """Set the model's ZBL prior to start at the shortest distance of each species pair in ``images`` (never above
    the onsets it already has): zero on every one of them."""
    shortest = shortest_pair_distances(images, model.species, model.r_cut)
    previous = None if model.repulsion is None else model.repulsion.onsets.detach().cpu().double().numpy()
    model.set_repulsion(repulsion_onsets(model.species, shortest, previous))


def normalise_descriptors(model: Sus2Potential, images: list[Atoms], max_atoms: int = 4000) -> None:
    """Set the descriptor multipliers to 1/std of each scalar descriptor over (a sample of) the training atoms."""
    order = np.random.default_rng(0).permutation(len(images))
    sample, atoms = [], 0
    for i in order:
        sample.append(images[i])
        atoms += len(images[i])
        if atoms >= max_atoms:
            break
    with torch.no_grad():
        b = model.descriptors(build_batch(sample, model.r_cut, model.species_index)).double()
    model.set_moment_scale(1.0 / (b.std(dim=0) + 1e-12 * b.abs().max() + 1e-300))


def init_task_shifts(model: Sus2Potential, images: list[Atoms]) -> None:
    """Start each task's per-species shift at its mean residual from the shared surface (composition fit)."""
    if not model.tasks:
        return
    preds = predict(model, images, batch_size=64, stress=False)
    for name in model.tasks:
        mine = [(a, p) for a, p in zip(images, preds) if a.info.get("task") == name]
        if not mine:
            continue
        residual = [(a, a.get_potential_energy() - p.energy) for a, p in mine]
        present = [s for s in model.species if any(s in a.get_chemical_symbols() for a, _ in residual)]
        counts = np.array([[a.get_chemical_symbols().count(s) for s in present] for a, _ in residual], dtype=float)
        offsets = np.linalg.lstsq(counts, np.array([r for _, r in residual]), rcond=None)[0]
        with torch.no_grad():
            for symbol, offset in zip(present, offsets):
                model.task_shift[model.tasks.index(name), model.species.index(symbol)] = float(offset)
