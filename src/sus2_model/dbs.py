"""Domain-bridging set (DBS) selection: a tiny, diverse subset of a source dataset, written with provenance so it can
be relabelled in another domain (e.g. PBE structures recomputed with r2SCAN) to align the tasks' energy surfaces."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from . import __version__
from .io import read_structures, write_structures
from .io.atomic import atomic_write
from .model import Sus2Potential
from .predict import load_model
from .selection import farthest_point_selection, structure_descriptors
from .species import parse_species
from .templates import untrained_mtp
from .train.data import dataset_hash, species_of, structure_hash


def descriptor_model(images, model: str | None = None) -> Sus2Potential:
    """The given model, or a generated L2 model whose pair scaling is initialised from the data."""
    if model is not None:
        return load_model(model)
    from .train.initialise import init_scaling_from_data

    species = species_of(images)
    generated = Sus2Potential(untrained_mtp(len(species), 2, 3, 16, 8, 0.0, 5.0), species)
    init_scaling_from_data(generated, images)
    return generated


def dbs_size(n_source: int, fraction: float, min_count: int) -> int:
    """How many structures a DBS of ``fraction`` (at least ``min_count``) of ``n_source`` holds."""
    return max(min_count, math.ceil(fraction * n_source))


def choose_dbs(images, count: int, chooser: Sus2Potential | None = None) -> list[int]:
    """Indices of ``count`` structures chosen by farthest-point sampling in standardised SUS2 descriptor space
    (descriptors of ``chooser``; default: :func:`descriptor_model` of the images)."""
    chooser = chooser if chooser is not None else descriptor_model(images)
    return farthest_point_selection(structure_descriptors(chooser, images), count)


def select_dbs(source: str | Path, out: str | Path, fraction: float = 0.001, min_count: int = 1,
               model: str | None = None, species: str | None = None, seed: int = 0) -> dict[str, Any]:
    """Select ``max(min_count, ceil(fraction * n))`` structures by farthest-point sampling and write them with
    provenance (source file and index, structure hashes) to ``out`` and ``out + '.json'``."""
    images = read_structures(source, species=parse_species(species))
    if not images:
        raise ValueError(f"{source}: no structures to select from")
    chooser = descriptor_model(images, model)
    chosen = choose_dbs(images, dbs_size(len(images), fraction, min_count), chooser)
    selected = []
    for rank, index in enumerate(chosen):
        atoms = images[index].copy()
        atoms.calc = images[index].calc
        atoms.info.update({"dbs_source": str(source), "dbs_index": int(index), "dbs_rank": rank})
        selected.append(atoms)
    write_structures(out, selected, species=chooser.species)
    summary = {"source": str(source), "source_hash": dataset_hash(images), "n_source": len(images),
               "fraction": fraction, "count": len(selected), "method": "farthest-point, standardised SUS2 descriptors",
               "descriptor_model": model or "generated l2k3 (data-initialised scaling)", "indices": chosen,
               "structure_hashes": [structure_hash(a) for a in selected], "sus2_version": __version__, "seed": seed}
    text = json.dumps(summary, indent=2)
    atomic_write(Path(str(out) + ".json"), lambda fh: fh.write(text))
    return summary
