"""MOF gas adsorption: the local insertion energy against full-cell evaluations, Widom against an exact quadrature."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.units import kB
from scipy.constants import atomic_mass, gas_constant
from scipy.spatial.transform import Rotation

from sus2_model.insertion import LocalInsertion, guest_extent, guest_shape, rigid_positions, supercell_repeats
from sus2_model.predict import evaluate, load_model
from sus2_workflows.errors import ScreeningError
from sus2_workflows.steps.dispersion import DispersedInsertion, LocalDispersion
from sus2_workflows.steps.mof import framework_supercell, guest_molecule
from sus2_workflows.steps.frameworks import framework_problems
from sus2_workflows.steps.pores import pore_map, without_pockets, without_probe_pockets
from sus2_workflows.steps.targets import read_file
from sus2_workflows.steps.widom import LennardJonesInsertion, WidomSettings, framework_density, widom
from sus2_workflows.steps.zeopp import probe_nodes

from .conftest import random_model


def _random_trials(insertion: LocalInsertion, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.random((n, 3)) @ insertion.images.cell
    return insertion.positions(centres, Rotation.random(n, random_state=seed).as_matrix())


def _full_cell_changes(model, framework: Atoms, guest: Atoms, positions: np.ndarray, task: int = -1) -> np.ndarray:
    """E(framework + guest) - E(framework) - E(guest) by whole-cell model calls."""
    e_framework = evaluate(model, [framework], task, stress=False)[0].energy
    e_guest = evaluate(model, [guest], task, stress=False)[0].energy
    loaded = [framework + Atoms(guest.get_chemical_symbols(), positions=p) for p in positions]
    return np.array([p.energy for p in evaluate(model, loaded, task, stress=False)]) - e_framework - e_guest


def _porous_copper() -> Atoms:
    """fcc Cu (3x3x3 cubic cells) with a spherical cavity of radius 4.6 Å at the cell's centre."""
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3)
    centre = atoms.cell.array.sum(axis=0) / 2
    del atoms[[a.index for a in atoms if np.linalg.norm(a.position - centre) < 4.6]]
    return atoms


@pytest.mark.parametrize("task,onset", [(None, None), ("surface", None), (None, 4.5)])
def test_local_insertion_equals_full_cell_energy_difference(task, onset):
    model = random_model(species=("Cu", "Ni"))
    if onset is not None:  # the repulsive prior acts on guest-framework pairs (4.2-4.5 Å: in its switch)
        model.set_repulsion(np.full((2, 2), onset))
    if task is not None:  # a multi-task model: the task's own shifts, scales, moments and r0 corrections
        model.add_task(task)
        rng = np.random.default_rng(3)
        for p in model.task_parameters():
            p.data.copy_(torch.as_tensor(rng.normal(0.0, 0.05, p.shape)))
    framework, guest = _porous_copper(), Atoms("Ni2", positions=[[0, 0, 0], [0, 0, 2.2]])
    insertion = LocalInsertion(model, framework, guest, task=task)
    centre = framework.cell.array.sum(axis=0) / 2
    rng = np.random.default_rng(0)
    positions = insertion.positions(centre + rng.normal(0.0, 0.2, (6, 3)),
                                    Rotation.random(6, random_state=1).as_matrix())
    result = insertion.energy_change(positions)
    assert not result.overlap.any()
    expected = _full_cell_changes(model, framework, guest, positions, model.task_index(task))
    np.testing.assert_allclose(result.energy, expected, rtol=0, atol=1e-8)
    assert np.ptp(result.energy) > 1e-3  # the trials differ: the comparison is not between constants


def test_overlapping_trials_are_counted_and_never_evaluated():
    model = random_model(species=("Cu", "Ni"))
    framework, guest = _porous_copper(), Atoms("Ni")
    insertion = LocalInsertion(model, framework, guest)
    atom = framework.positions[0] + [0.3, 0.0, 0.0]  # 0.3 Å from a Cu atom
    centre = framework.cell.array.sum(axis=0) / 2
    result = insertion.energy_change(np.array([[atom], [centre]]))
    assert result.overlap.tolist() == [True, False]
    assert result.energy[0] == np.inf and np.isfinite(result.energy[1])


def test_narrow_cell_is_refused_with_its_width():
    model = random_model(species=("Cu", "Ni"))
    with pytest.raises(ValueError, match="Å wide.*supercell"):
        LocalInsertion(model, bulk("Cu", "fcc", a=3.61, cubic=True), Atoms("Ni"), name="tiny")


@pytest.mark.shared
@pytest.mark.parametrize("name,guest", [("Mg-MOF-74_Mg-DOBDC.cif", "CO2"), ("CALF-20.cif", "CO2"),
                                        ("ZIF-8.cif", "H2O")])
def test_local_insertion_in_real_mofs_with_the_universal_model(shared_data, name, guest):
    model = load_model(shared_data / "sus2_published" / "m3gnet" / "l2k3.mtp")
    (target,) = read_file(shared_data / "mofs" / name)
    molecule_ = guest_molecule(guest)
    framework = framework_supercell(target.atoms, model.r_cut, molecule_)
    insertion = LocalInsertion(model, framework, molecule_, name=name)
    positions = _random_trials(insertion, 40, seed=7)
    result = insertion.energy_change(positions)
    picked = np.flatnonzero(~result.overlap)[:3]
    assert len(picked) == 3
    expected = _full_cell_changes(model, framework, molecule_, positions[picked])
    np.testing.assert_allclose(result.energy[picked], expected, rtol=0, atol=1e-8)


def _dftd3_changes(framework: Atoms, guest: Atoms, positions: np.ndarray, cutoff: float) -> np.ndarray:
    """E_D3(framework + guest) - E_D3(framework) - E_D3(guest) by full-cell calls of the dftd3 library (PBE D3(BJ),
    two-body, every real-space cutoff ``cutoff`` Å)."""
    from ase.units import Bohr, Hartree
    from dftd3.interface import DispersionModel, RationalDampingParam

    def energy(atoms: Atoms, periodic: bool = True) -> float:
        model = DispersionModel(atoms.numbers, atoms.positions / Bohr, atoms.cell.array / Bohr if periodic else None,
                                np.array([True] * 3) if periodic else None)
        model.set_realspace_cutoff(cutoff / Bohr, cutoff / Bohr, cutoff / Bohr)
        return float(model.get_dispersion(RationalDampingParam(method="pbe"), False)["energy"]) * Hartree

    reference = energy(framework) + energy(guest, periodic=False)
    return np.array([energy(framework + Atoms(guest.get_chemical_symbols(), positions=p)) for p in positions]) \
        - reference


def _check_local_dispersion(framework: Atoms, guest: Atoms, positions: np.ndarray, cutoff: float) -> np.ndarray:
    """The local D3 change against full-cell dftd3 calls, the cell wide enough that the guest meets no image of
    itself within the cutoffs; returns the local changes."""
    framework = framework.repeat(supercell_repeats(framework.cell.array, 2 * cutoff + guest_extent(guest)))
    local = LocalDispersion(framework, guest, pair_cutoff=cutoff, cn_cutoff=cutoff).energy_change(positions)
    assert not local.overlap.any()
    # measured: at most 1.1e-8 eV on Mg-MOF-74 and CALF-20 (the linearised far weights and the second-order cut)
    np.testing.assert_allclose(local.energy, _dftd3_changes(framework, guest, positions, cutoff), rtol=0, atol=3e-8)
    assert np.ptp(local.energy) > 1e-3
    return local.energy


def test_local_dispersion_equals_full_cell_dftd3_and_adds_to_the_model():
    model = random_model(species=("Cu", "Ni"))
    framework, guest = _porous_copper(), Atoms("Ni2", positions=[[0, 0, 0], [0, 0, 2.2]])
    insertion = LocalInsertion(model, framework, guest)
    centre = framework.cell.array.sum(axis=0) / 2
    positions = insertion.positions(centre + np.random.default_rng(0).normal(0.0, 0.3, (5, 3)),
                                    Rotation.random(5, random_state=1).as_matrix())
    d3 = _check_local_dispersion(framework, guest, positions, cutoff=8.0)
    both = DispersedInsertion(insertion, LocalDispersion(framework, guest, pair_cutoff=8.0, cn_cutoff=8.0))
    np.testing.assert_allclose(both.energy_change(positions).energy, insertion.energy_change(positions).energy + d3,
                               rtol=0, atol=1e-12)
    overlapping = np.array([[framework.positions[0], framework.positions[0] + [0, 0, 2.2]]])
    assert both.energy_change(overlapping).overlap.tolist() == [True]


@pytest.mark.shared
@pytest.mark.parametrize("name", ["Mg-MOF-74_Mg-DOBDC.cif", "CALF-20.cif"])
def test_local_dispersion_in_real_mofs(shared_data, name):
    (target,) = read_file(shared_data / "mofs" / name)
    guest = guest_molecule("CO2")
    framework = framework_supercell(target.atoms, 6.0, guest)
    insertion = LocalDispersion(framework, guest, pair_cutoff=9.0, cn_cutoff=9.0)
    rng = np.random.default_rng(7)
    centres = rng.random((60, 3)) @ framework.cell.array
    positions = rigid_positions(guest_shape(guest), centres, Rotation.random(60, random_state=7).as_matrix())
    free = positions[~insertion.energy_change(positions).overlap][:4]
    assert len(free) == 4
    _check_local_dispersion(framework, guest, free, cutoff=9.0)


def _lattice_framework() -> Atoms:
    """A simple-cubic lattice of carbon atoms, 5 Å apart, in a 10 Å cell."""
    grid = np.array(np.meshgrid(*[np.arange(2)] * 3, indexing="ij")).reshape(3, -1).T * 5.0
    return Atoms(f"C{len(grid)}", positions=grid, cell=[10.0] * 3, pbc=True)


def _quadrature(framework: Atoms, eps: float, sig: float, cutoff: float, temperature: float, n: int,
                blocked=None) -> tuple[float, float]:
    """<exp(-U/kT)> and <U exp(-U/kT)>/<exp(-U/kT)> over a regular grid of the cell (midpoint rule), U summed
    over all framework atoms in the 27 nearest cells by brute force; weight 0 where ``blocked(points)``."""
    axis = (np.arange(n) + 0.5) / n
    points = np.array(np.meshgrid(axis, axis, axis, indexing="ij")).reshape(3, -1).T @ framework.cell.array
    shifts = np.array(np.meshgrid(*[[-1, 0, 1]] * 3, indexing="ij")).reshape(3, -1).T @ framework.cell.array
    atoms = (framework.positions[None] + shifts[:, None]).reshape(-1, 3)
    lj = lambda r: 4 * eps * ((sig / r) ** 12 - (sig / r) ** 6)  # noqa: E731
    energies = np.empty(len(points))
    for start in range(0, len(points), 4096):
        r = np.linalg.norm(points[start:start + 4096, None] - atoms[None], axis=-1)
        energies[start:start + 4096] = np.where(r < cutoff, lj(np.maximum(r, 1e-3)) - lj(cutoff), 0.0).sum(1)
    w = np.exp(-energies / (kB * temperature))
    if blocked is not None:
        w[blocked(points)] = 0.0
    return float(w.mean()), float((w * energies).sum() / w.sum())


@pytest.mark.parametrize("blocked, mapped", [(None, False), (lambda centres: centres[:, 0] < 5.0, False),
                                             (None, True)], ids=["open", "half-blocked", "pore-map"])
def test_widom_henry_coefficient_matches_quadrature(blocked, mapped):
    framework, guest = _lattice_framework(), Atoms("Ar")
    eps, sig, cutoff, temperature = 0.0062, 3.4, 4.9, 150.0  # Ar-C mixed: sqrt(0.0103 * 0.0037) eV
    energy = LennardJonesInsertion(framework, guest, {"Ar": 0.0103, "C": 0.0037}, {"Ar": 3.4, "C": 3.4}, cutoff)
    assert energy.eps[0, 0] == pytest.approx(eps, rel=1e-2)
    settings = WidomSettings(temperature=temperature, batch_size=5000, min_trials=100_000, rtol=0.01)
    pores = pore_map(energy.images, guest_shape(guest)) if mapped else None
    result = widom(energy, framework, guest, settings, blocked=blocked, pores=pores)
    if mapped:  # the map skips the volume where every trial overlaps: trials are spent elsewhere
        assert 0.5 < pores.fraction < 1.0 and result.open_fraction == pores.fraction
        # overlaps are left only in voxels that straddle a contact sphere: fewer than the volume the map took away
        assert result.n_overlap / result.n_trials < 1.0 - pores.fraction
    mean_w, mean_u = _quadrature(framework, float(energy.eps[0, 0]), sig, cutoff, temperature, 64, blocked)
    density = 8 * 12.011 * atomic_mass / 1e-27  # 8 C in 1000 Å^3, kg/m^3
    assert framework_density(framework) == pytest.approx(density, rel=1e-4)
    exact_henry = mean_w / (gas_constant * temperature * density)
    assert result.converged and result.henry_error / result.henry < 0.01
    assert abs(result.henry - exact_henry) < 3 * result.henry_error
    exact_enthalpy = (mean_u - kB * temperature) * 96.485332
    assert abs(result.enthalpy_kj_mol - exact_enthalpy) < 3 * result.enthalpy_error + 1e-3
    assert result.n_trials == result.n_evaluated + result.n_overlap + result.n_blocked
    assert (result.n_blocked > 0.45 * result.n_trials) == (blocked is not None)  # half the cell: x < 5 Å
    assert result.lowest_energies[0] == pytest.approx(result.lowest_energies.min())


def test_a_pore_map_closes_only_voxels_where_every_orientation_of_the_guest_overlaps():
    framework, guest = _lattice_framework(), guest_molecule("CO2")
    energy = LennardJonesInsertion(framework, guest, {"C": 0.0037, "O": 0.008}, {"C": 3.4, "O": 3.0}, 4.9)
    pores = pore_map(energy.images, guest_shape(guest))
    closed = np.setdiff1d(np.arange(int(np.prod(pores.shape))), pores.open_voxels)
    assert 0.0 < pores.fraction < 1.0 and len(closed) > 0
    rng = np.random.default_rng(1)
    corner = np.stack(np.unravel_index(closed[rng.integers(len(closed), size=5000)], pores.shape), axis=1)
    centres = ((corner + rng.random((5000, 3))) / np.array(pores.shape)) @ pores.cell  # anywhere in closed voxels
    rotations = Rotation.random(5000, random_state=rng).as_matrix()
    assert energy.energy_change(rigid_positions(guest_shape(guest), centres, rotations)).overlap.all()
    inside = pores.sample(rng, 5000) @ np.linalg.inv(pores.cell)  # and its samples stay in the cell
    assert ((inside >= 0) & (inside < 1)).all()


def _walls(normals: list[int], edge: float = 10.0, spacing: float = 1.25) -> Atoms:
    """A cubic cell of carbon walls, one through the origin normal to each axis in ``normals``: atoms ``spacing``
    apart, closer than an argon atom can pass between."""
    grid = np.arange(0.0, edge, spacing)
    points = {tuple(np.round(np.insert(np.array(p), axis, 0.0), 6)) for axis in normals
              for p in np.array(np.meshgrid(grid, grid, indexing="ij")).reshape(2, -1).T}
    return Atoms(f"C{len(points)}", positions=sorted(points), cell=[edge] * 3, pbc=True)


@pytest.mark.parametrize("normals, percolates, shift", [([0, 1], True, 0.0), ([0, 1, 2], False, 0.0),
                                                        ([0, 1, 2], False, 5.0), ([0, 1], True, 5.0)],
                         ids=["channel", "cavity", "cavity-across-faces", "channel-across-faces"])
def test_pockets_that_do_not_reach_through_the_crystal_are_blocked(normals, percolates, shift):
    framework, guest = _walls(normals), Atoms("Ar")
    framework.translate([shift] * 3)  # 5 Å: the cavity or channel split by every face of the cell
    framework.wrap()
    energy = LennardJonesInsertion(framework, guest, {"Ar": 0.0103, "C": 0.0037}, {"Ar": 3.4, "C": 3.4}, 4.9)
    pores = pore_map(energy.images, guest_shape(guest))
    reached = without_pockets(pores)
    assert 0.1 < pores.fraction < 0.9  # the walls close their own slabs of the cell, the rest is open
    if percolates:  # a channel along z, sealed in x and y: all of it reaches through the crystal
        assert reached.pocket_voxels == 0 and reached.fraction == pores.fraction
    else:  # a closed cubic cavity: nothing reaches it from outside
        assert reached.fraction == 0.0 and reached.pocket_voxels == len(pores.open_voxels)
        with pytest.raises(ScreeningError, match="no accessible pore"):
            widom(energy, framework, guest, WidomSettings(min_trials=2000, max_trials=2000), pores=reached)


def _channel_and_side_pocket(hole: float) -> Atoms:
    """Carbon walls in a 20 x 10 x 10 Å cell: a channel along z (x from 0 to 10 Å) and beside it a box (x from 10 to
    20 Å) sealed but for a round hole of radius ``hole`` (Å) in the wall between them, at (10, 5, 5)."""
    grid, wide = np.arange(0.0, 10.0, 1.25), np.arange(0.0, 20.0, 1.25)
    points = {(x, y, z) for x in (0.0, 10.0) for y in grid for z in grid}  # walls normal to x
    points |= {(x, 0.0, z) for x in wide for z in grid}  # normal to y, everywhere
    points |= {(x, y, 0.0) for x in wide[wide > 10.0] for y in grid}  # normal to z, closing the box only
    points = [p for p in points if not (p[0] == 10.0 and np.hypot(p[1] - 5.0, p[2] - 5.0) < hole)]
    return Atoms(f"C{len(points)}", positions=sorted(points), cell=[20.0, 10.0, 10.0], pbc=True)


@pytest.mark.parametrize("probe, blocked", [(1.5, False), (2.0, True)])
def test_zeopp_blocks_a_side_pocket_whose_window_is_narrower_than_the_probe(probe, blocked):
    framework, guest = _channel_and_side_pocket(hole=3.2), Atoms("Ar")
    energy = LennardJonesInsertion(framework, guest, {"Ar": 0.0103, "C": 0.0037}, {"Ar": 3.4, "C": 3.4}, 4.9)
    reached = without_pockets(pore_map(energy.images, guest_shape(guest)))
    x = lambda pores: ((np.unravel_index(pores.open_voxels, pores.shape)[0] + 0.5) / pores.shape[0] * 20.0)  # noqa
    # an argon centre passes the 3.2 Å hole by the contact rule: the box is reached, nothing is a closed cavity
    assert reached.pocket_voxels == 0 and (x(reached) > 11.0).sum() > 10_000
    nodes, pocket = probe_nodes(framework, probe)
    assert (nodes[:, 3] > probe).all() and pocket.any() == blocked
    assert ((nodes[pocket, 0] > 10.0) & (nodes[pocket, 0] < 20.0)).all()  # pockets only in the box
    sized = without_probe_pockets(reached, nodes, pocket)
    if blocked:  # the 2 Å probe (plus Zeo++'s 1.7 Å carbon) does not fit the hole: the whole box, walls included
        assert (x(sized) > 11.0).sum() == 0 and (x(sized) < 9.0).sum() == (x(reached) < 9.0).sum()
        assert sized.pocket_voxels == len(reached.open_voxels) - len(sized.open_voxels)
    else:
        assert sized is reached


def test_zeopp_refuses_a_framework_no_channel_of_which_admits_the_probe():
    with pytest.raises(ScreeningError, match="cage: no channel through the crystal admits a probe of radius 1.5"):
        probe_nodes(_walls([0, 1, 2]), 1.5, "cage")


def test_framework_checks_name_extra_bonds_missing_hydrogens_and_unbonded_molecules():
    from ase.build import graphene, molecule

    sheet = graphene(size=(4, 4, 1), vacuum=6.0)
    sheet.pbc = True
    assert framework_problems(sheet) == []  # sp2 carbon, three bonds in a plane, extending through the crystal
    water = molecule("H2O")
    water.translate(sheet.cell.array.sum(axis=0) / 2 + [0, 0, 3.0])
    two = water.copy()
    two.translate([2.5, 0.0, 0.0])
    problems = framework_problems(sheet + water + two)
    assert problems == ["atoms or molecules bonded to no framework (solvent or counter-ions: remove them): 2 x H2O"]
    puckered = sheet.copy()
    puckered.positions[5, 2] += 0.6  # a carbon pushed out of the plane: its three bonds now look sp3
    assert framework_problems(puckered) == ["carbon lacking a hydrogen (missing from the file?): C5"]
    bond = sheet.get_distances(0, range(1, len(sheet)), mic=True, vector=True)
    neighbour = bond[np.argmin(np.linalg.norm(bond, axis=1))]
    crowded = sheet + Atoms("C", positions=[sheet.positions[0] - neighbour])  # a carbon in a hexagon's centre
    assert framework_problems(crowded) == [f"C with more than 4 bonds: C{len(sheet)}"]


@pytest.mark.shared
def test_framework_checks_pass_real_mofs_and_name_what_an_edit_breaks(shared_data):
    from ase.build import molecule

    for path in sorted((shared_data / "mofs").glob("*.cif")):
        (target,) = read_file(path)
        assert framework_problems(target.atoms) == [], path.name
    (target,) = read_file(shared_data / "mofs" / "Mg-MOF-74_Mg-DOBDC.cif")
    atoms = target.atoms
    hydrogens = [a.index for a in atoms if a.symbol == "H"]
    bare = atoms.copy()
    del bare[hydrogens[:2]]  # a linker's C-H hydrogens left out, as in a protonated linker's careless CIF
    (problem,) = framework_problems(bare)
    assert problem.startswith("carbon lacking a hydrogen") and problem.count(", C") == 1
    water = molecule("H2O")
    water.translate(atoms.cell.array[2] / 2)  # on the channel's axis
    assert framework_problems(atoms + water)[-1].endswith("1 x H2O")


def _saved_model(tmp_path):
    from sus2_model.io.native import save_native
    from sus2_workflows.campaign.screening import named_model
    from sus2_workflows.spec import ScreeningModelSpec

    path = tmp_path / "model.pt"
    save_native(random_model(species=("Cu", "Ni")), path)
    return named_model(ScreeningModelSpec(path=str(path)))


def test_mof_screen_names_bad_frameworks_and_guests_and_goes_on(tmp_path):
    from ase.io import write

    from sus2_workflows.campaign import MemoryCache, Workspace
    from sus2_workflows.campaign.mof import screen_mof
    from sus2_workflows.spec import EosTarget, MofTarget

    folder = tmp_path / "frameworks"
    folder.mkdir()
    write(folder / "porous.cif", _porous_copper())
    write(folder / "dense.cif", bulk("Cu", "fcc", a=3.61, cubic=True))
    solvated = _porous_copper()
    write(folder / "solvated.cif", solvated + Atoms("Ni", positions=[solvated.cell.array.sum(axis=0) / 2]))
    (folder / "partial.cif").write_text(
        "data_partial\n_cell_length_a 10\n_cell_length_b 10\n_cell_length_c 10\n_cell_angle_alpha 90\n"
        "_cell_angle_beta 90\n_cell_angle_gamma 90\n_symmetry_space_group_name_H-M 'P 1'\nloop_\n_atom_site_label\n"
        "_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n_atom_site_occupancy\n"
        "Cu1 Cu 0 0 0 0.5\nNi1 Ni 0 0 0 0.5\n")
    target = MofTarget(framework=EosTarget(path=str(folder)), guests=["Ni", "CO2"], min_trials=200, max_trials=400,
                       binding_sites=1, block_pockets=False)  # the porous copper's pore is a closed cavity
    cache = MemoryCache()
    screened = screen_mof(_saved_model(tmp_path), [target], Workspace(tmp_path, cache))
    errors = {f.name: f.error for f in screened.failures}
    assert "partial occupancies" in errors["partial.cif"]
    assert "bonded to no framework (solvent or counter-ions: remove them): 1 x Ni" in errors["solvated.cif"]
    assert "no accessible pore" in errors["dense.cif+Ni"]
    assert "['C', 'O'] not in the model's species" in errors["porous.cif+CO2"]
    (result,) = screened.results
    assert result.name == "porous.cif+Ni" and result.widom.n_trials >= 200
    assert result.widom.n_trials == result.widom.n_evaluated + result.widom.n_overlap + result.widom.n_blocked
    assert result.widom.henry > 0 and np.isfinite(result.widom.enthalpy_kj_mol)
    # with pockets blocked (the default) the closed cavity is a named failure, not a number
    blocked = screen_mof(_saved_model(tmp_path), [MofTarget(framework=EosTarget(path=str(folder / "porous.cif")),
                                                            guests=["Ni"], min_trials=200, max_trials=400)],
                         Workspace(tmp_path / "blocked", MemoryCache()))
    assert not blocked.results and "no accessible pore" in blocked.failures[0].error
    sized = screen_mof(_saved_model(tmp_path), [MofTarget(framework=EosTarget(path=str(folder / "porous.cif")),
                                                          guests=["Ni"], block_pockets=False, probe_radius=1.0)],
                       Workspace(tmp_path / "sized", MemoryCache()))
    assert "no channel through the crystal admits a probe of radius 1.0 Å (Zeo++)" in sized.failures[0].error
    # 10.83 Å is wider than twice the cutoff (4.6 Å) plus a single atom: no repeat; a rerun reads the cache
    assert result.supercell == [1, 1, 1] and result.n_framework_atoms == len(_porous_copper())
    again = screen_mof(_saved_model(tmp_path), [target], Workspace(tmp_path, cache))
    assert again.results[0].result_hash == result.result_hash


@pytest.mark.shared
def test_screen_mof_command_prints_one_record_per_framework(shared_data, tmp_path, capsys):
    from sus2_workflows.screen_cli import screen_main

    missing = tmp_path / "missing.cif"
    code = screen_main(["mof", str(shared_data / "mofs" / "CALF-20.cif"), str(missing), "--guest", "CO2", "--model",
                        str(shared_data / "sus2_published" / "m3gnet" / "l2k3.mtp"), "--binding-sites", "1",
                        "--min-trials", "2000", "--rtol", "0.5", "--dispersion", "d3", "--probe-radius", "1.3",
                        "--json"])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0 and len(records) == 2
    calf, failed = records
    assert calf["framework"] == "CALF-20.cif" and calf["guest"] == "CO2" and calf["supercell"] == [2, 2, 2]
    assert calf["insertions"] == calf["evaluated"] + calf["overlap_rejected"] and calf["insertions"] >= 2000
    assert calf["henry_mol_kg_pa"] > 0 and calf["henry_error"] > 0 and np.isfinite(calf["qst_kj_mol"])
    assert 0.3 < calf["open_fraction"] < 0.4 and calf["blocked_fraction"] < 1e-4  # a 1.3 Å probe reaches every pore
    assert abs(calf["binding_energy_ev"]) < 0.2 and "(guest " in calf["site"]  # no dispersion: CO2 hardly binds
    # D3 binds CO2 more strongly, in the sites and across the insertions
    assert calf["binding_energy_d3_ev"] < calf["binding_energy_ev"] - 0.1
    assert calf["qst_d3_kj_mol"] > calf["qst_kj_mol"] + 5.0 and calf["henry_d3_mol_kg_pa"] > calf["henry_mol_kg_pa"]
    assert "missing.cif" in failed["framework"] and "no such file" in failed["error"]
