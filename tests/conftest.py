"""Shared fixtures: small generated models and structures; the ../shared reference data when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from sus2_model import Sus2Potential
from sus2_model.templates import untrained_mtp

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """Path of ../shared/data; skips the test on machines without it (users' checkouts)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("reference data ../shared/data is absent (present in CI)")
    return SHARED_DATA


def random_model(max_rank: int = 2, species=("Cu", "Ni"), seed: int = 1, max_level: int = 18) -> Sus2Potential:
    """A generated model with random (non-trivial) coefficients and distinct pair scalings."""
    mtp = untrained_mtp(len(species), max_rank=max_rank, n_radial=2, max_level=max_level, radial_basis_size=6,
                        min_dist=1.8, max_dist=4.6, seed=seed)
    rng = np.random.default_rng(seed)
    mtp.moment_coeffs = rng.normal(0, 1.0, len(mtp.moment_coeffs))
    mtp.shift_coeffs = rng.normal(-3.0, 0.5, len(species))
    mtp.species_coeffs = rng.uniform(0.5, 1.5, len(species))
    mtp.scal_coeffs = mtp.scal_coeffs * rng.uniform(0.8, 1.2, mtp.scal_coeffs.shape)
    mtp.radial_coeffs[0, mtp.radial_basis_size:] = rng.uniform(0.7, 1.3, len(species))
    return Sus2Potential(mtp, list(species))


@pytest.fixture(params=[1, 2, 3, 4, 5], ids=["L1", "L2", "L3", "L4", "L5"])
def model(request) -> Sus2Potential:
    return random_model(max_rank=request.param)


@pytest.fixture
def triclinic_cell() -> Atoms:
    """A small, skewed Cu-Ni cell: smaller than the cutoff, so atoms see their own images."""
    atoms = bulk("Cu", "fcc", a=3.6) * (2, 1, 1)
    atoms.symbols[1] = "Ni"
    atoms.set_cell(atoms.cell.array + np.array([[0.0, 0.2, 0.1], [0.15, 0.0, -0.1], [0.05, 0.1, 0.0]]),
                   scale_atoms=True)
    atoms.rattle(0.08, seed=4)
    return atoms


@pytest.fixture
def molecule() -> Atoms:
    """An isolated, non-periodic cluster."""
    atoms = Atoms("Cu4Ni2", positions=[[0, 0, 0], [2.4, 0.1, 0], [0.2, 2.5, 0.1], [0.1, 0.2, 2.3],
                                        [2.3, 2.2, 0.3], [2.2, 0.1, 2.4]])
    atoms.rattle(0.05, seed=2)
    return atoms
