"""Campaign stages for the data: the seed structures, curation of imported datasets, the domain-bridging set."""

from __future__ import annotations

from typing import Sequence

from ase import Atoms

from sus2_model.train.data import structure_hash

from ..documents import CuratedDatasetDocument, CuratedTaskDocument, DbsDocument, Provenance, atoms_from_dict, \
    atoms_to_dict, summary_of
from ..hashing import content_key, file_sha256
from ..spec import CampaignSpec, CurationSpec, DbsSpec, ImportSpec
from ..steps.curate import curate_dataset
from ..steps.dbs import select_bridging_set, unlabelled_copies
from ..steps.seeds import generate_seeds, isolated_atom
from .adsorption import surface_seeds
from .cache import Workspace

DBS_METHOD = "farthest-point sampling, standardised SUS2 descriptors"


def seed_structures(spec: CampaignSpec) -> list[Atoms]:
    """The structures a campaign labels first: every seed spec's strained/rattled copies, one isolated atom per
    element when the spec's curation asks for isolated-atom references, and the slabs and adsorbate placements of
    every adsorption target that asks to be learned."""
    seeds: list[Atoms] = []
    for k, s in enumerate(spec.seeds):
        seeds += generate_seeds(s.element, s.prototype, s.a, s.supercell, s.strains, s.rattle, s.copies, seed=k)
    if spec.curation.isolated_atoms:
        seeds += [isolated_atom(e) for e in sorted({s.element for s in spec.seeds})]
    for target in spec.screening.adsorption:
        if target.learn:
            seeds += surface_seeds(target)
    return seeds


def curate(datasets: Sequence[ImportSpec], curation: CurationSpec, ws: Workspace) -> CuratedDatasetDocument:
    """Import and curate existing datasets, one training task each (with the spec's weight).  Curation is cheap and
    deterministic, so it runs every time; its summary (no structures) goes to the cache for provenance."""
    tasks = []
    for entry in datasets:
        part = curate_dataset(entry.path, entry.task, entry.species, curation)
        tasks.append(CuratedTaskDocument(
            task=part.task, weight=entry.weight, source=part.source, source_sha256=file_sha256(entry.path),
            dataset_hash=part.dataset_hash, n_read=part.n_read, n_duplicates=part.n_duplicates,
            n_outliers=part.n_outliers, n_train=len(part.train), n_test=len(part.test), references=part.references,
            train_structures=[atoms_to_dict(a) for a in part.train],
            test_structures=[atoms_to_dict(a) for a in part.test]))
    document = CuratedDatasetDocument(
        dataset_hash=content_key(sorted((t.dataset_hash, t.task, t.weight) for t in tasks)), tasks=tasks,
        settings=curation.model_dump(), provenance=Provenance(inputs={"files": {t.source: t.source_sha256
                                                                                 for t in tasks}}))
    ws.cache.put("curated", document.dataset_hash, summary_of(document))
    return document


def choose_dbs(curated: CuratedDatasetDocument, settings: DbsSpec, ws: Workspace) -> DbsDocument:
    """Choose the domain-bridging set from the imported tasks' training structures (the choice is cached)."""
    pool, owner = [], []
    for task in curated.tasks:
        pool += [atoms_from_dict(d) for d in task.train_structures]
        owner += [(task.task, k) for k in range(task.n_train)]
    key = content_key(curated.dataset_hash, settings.model_dump())
    hit = ws.cache.get("dbs_choice", key)
    if hit is None:
        hit = {"indices": select_bridging_set(pool, settings.fraction, settings.min_count, settings.max_atoms)}
        ws.cache.put("dbs_choice", key, hit)
    indices = hit["indices"]
    picks = [{"task": owner[i][0], "index": owner[i][1], "structure_hash": structure_hash(pool[i])} for i in indices]
    chosen = unlabelled_copies(pool, indices, [f"{owner[i][0]}:{owner[i][1]}" for i in indices])
    document = DbsDocument(
        dbs_hash=content_key(sorted(p["structure_hash"] for p in picks)), source_dataset_hash=curated.dataset_hash,
        n_source=len(pool), method=DBS_METHOD, settings=settings.model_dump(), picks=picks,
        structures=[atoms_to_dict(a) for a in chosen],
        provenance=Provenance(inputs={"curated_dataset_hash": curated.dataset_hash}))
    ws.cache.put("dbs", document.dbs_hash, summary_of(document))
    return document
