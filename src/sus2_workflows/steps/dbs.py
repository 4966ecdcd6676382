"""Domain-bridging set: a few diverse structures of the imported tasks, to be relabelled by the campaign's labeler
so that the tasks' energy surfaces are tied together (SevenNet-Omni's DBS)."""

from __future__ import annotations

from typing import Sequence

from ase import Atoms

from sus2_model.dbs import choose_dbs, dbs_size


def select_bridging_set(images: Sequence[Atoms], fraction: float, min_count: int, max_atoms: int | None = None
                        ) -> list[int]:
    """Indices of ``max(min_count, ceil(fraction * n))`` structures (at most ``max_atoms`` atoms each, to keep the
    relabelling cheap) chosen by farthest-point sampling in standardised SUS2 descriptor space."""
    pool = [k for k, a in enumerate(images) if max_atoms is None or len(a) <= max_atoms]
    if not pool:
        return []
    chosen = choose_dbs([images[k] for k in pool], dbs_size(len(images), fraction, min_count))
    return [pool[i] for i in chosen]


def unlabelled_copies(images: Sequence[Atoms], indices: Sequence[int], origins: Sequence[str]) -> list[Atoms]:
    """The chosen structures without their labels, named ``dbs:<origin>`` (e.g. the source task and index)."""
    out = []
    for rank, (index, origin) in enumerate(zip(indices, origins)):
        atoms = images[index].copy()
        atoms.calc = None
        atoms.info = {"source": f"dbs:{origin}", "dbs_rank": rank}
        out.append(atoms)
    return out
