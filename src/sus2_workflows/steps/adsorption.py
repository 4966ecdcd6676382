"""Surface adsorption, AdsorbML style: slabs cut from a bulk crystal (pymatgen's ``SlabGenerator``), placements of an
adsorbate (``AdsorbateSiteFinder``'s ontop/bridge/hollow sites plus random ones), every placement relaxed, the
anomaly filter (desorbed, dissociated, surface changed, intercalated), equivalent minima merged, and each minimum's
adsorption site named from its relaxed geometry.  Slab atoms come first in every configuration; the adsorbate's
binding atom is the first atom after them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.constraints import FixAtoms
from ase.data import atomic_numbers, covalent_radii
from ase.geometry import get_distances
from ase.neighborlist import natural_cutoffs, neighbor_list
from ase.optimize import BFGS

from ..errors import ScreeningError

LAYER_GAP = 0.5  # Å: atoms closer in height than this are one layer
HEIGHT_FRACTION = 0.9  # initial height of the binding atom: this fraction of its covalent bond to a surface atom
MIN_CONTACT = 0.6  # a placement overlaps the surface if two atoms are closer than this fraction of their bond
CLOSE_CONTACT = 0.85  # a placement pressed onto the surface: its closest contact is this fraction of the bond
BOND_MULT = 1.25  # covalent radii x this: the bonds inside the adsorbate (dissociation) and of the site
SURFACE_MULT = 1.5  # covalent radii x this: the slab's own bonds (surface changed) and adsorbate-slab contact
RANDOM_TILT = 30.0  # degrees: at most this tilt of a randomly placed molecule
RELAX_FMAX = 0.05  # eV/Å (OC20's relaxation criterion)
RELAX_STEPS = 300
SITE_SHELL = 1.2  # surface atoms within this factor of the nearest one coordinate the binding atom
MERGE_ENERGY = 0.05  # eV: configurations with the same site and energies this close are one minimum
SITE_KINDS = ("ontop", "bridge", "hollow")
SETTINGS = {"layer_gap": LAYER_GAP, "height_fraction": HEIGHT_FRACTION, "min_contact": MIN_CONTACT,
            "bond_mult": BOND_MULT, "surface_mult": SURFACE_MULT, "random_tilt": RANDOM_TILT,
            "relax": {"optimizer": "BFGS", "fmax": RELAX_FMAX, "steps": RELAX_STEPS}, "site_shell": SITE_SHELL, "merge_energy": MERGE_ENERGY,
            "sites": SITE_KINDS}


def layers(atoms: Atoms, indices: Sequence[int] | None = None) -> list[list[int]]:
    """Atoms grouped into layers by height (bottom first): a gap of more than :data:`LAYER_GAP` starts a layer."""
    indices = np.arange(len(atoms)) if indices is None else np.asarray(indices)
    order = indices[np.argsort(atoms.positions[indices, 2])]
    groups: list[list[int]] = [[int(order[0])]]
    for previous, current in zip(order[:-1], order[1:]):
        if atoms.positions[current, 2] - atoms.positions[previous, 2] > LAYER_GAP:
            groups.append([])
        groups[-1].append(int(current))
    return groups


def fixed_bottom(atoms: Atoms, n_layers: int, indices: Sequence[int] | None = None) -> FixAtoms:
    """The constraint that holds the bottom ``n_layers`` layers (:func:`layers`) of ``atoms`` (of ``indices``) fixed."""
    return FixAtoms(indices=[i for layer in layers(atoms, indices)[:n_layers] for i in layer])


def make_slabs(bulk: Atoms, miller: Sequence[int], min_slab: float, min_vacuum: float, min_lateral: float,
               fixed_layers: int) -> list[Atoms]:
    """Every termination of the ``miller`` surface of ``bulk`` (indices of its conventional standard cell): slabs at
    least ``min_slab`` Å thick with ``min_vacuum`` Å of vacuum, the surface normal along z, repeated in plane until
    both surface vectors are at least ``min_lateral`` Å, the bottom ``fixed_layers`` layers fixed."""
    from pymatgen.core.surface import SlabGenerator
    from pymatgen.io.ase import AseAtomsAdaptor
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    conventional = SpacegroupAnalyzer(AseAtomsAdaptor.get_structure(bulk)).get_conventional_standard_structure()
    generator = SlabGenerator(conventional, tuple(miller), min_slab, min_vacuum, center_slab=True, lll_reduce=True,
                              primitive=True)
    formula = bulk.get_chemical_formula(mode="metal", empirical=True)
    hkl = "".join(str(i) for i in miller)
    slabs = []
    for k, pmg_slab in enumerate(generator.get_slabs()):
        atoms = AseAtomsAdaptor.get_atoms(pmg_slab.get_orthogonal_c_slab())
        atoms.set_cell(atoms.cell.standard_form()[0], scale_atoms=True)  # a along x, b in xy, c along z
        atoms.wrap()
        repeat = [max(1, int(np.ceil(min_lateral / length - 1e-9))) for length in atoms.cell.lengths()[:2]]
        atoms = atoms * (*repeat, 1)
        groups = layers(atoms)
        if len(groups) <= fixed_layers:
            raise ScreeningError(f"{formula}({hkl}): the slab has {len(groups)} layers, not more than the "
                                 f"{fixed_layers} fixed ones: raise min_slab")
        atoms.set_constraint(fixed_bottom(atoms, fixed_layers))
        atoms.set_tags([1 if i in groups[-1] else 0 for i in range(len(atoms))])  # OC20: 1 surface, 0 below
        atoms.info.update({"surface": f"{formula}({hkl})" + (f"#{k}" if k else ""), "miller": hkl,
                           "shift": float(pmg_slab.shift)})
        slabs.append(atoms)
    return slabs


def slab_problems(slab: Atoms, cutoff: float) -> list[str]:
    """Why ``slab`` cannot be screened with a model of ``cutoff`` Å: thinner than the cutoff (the middle sees both
    surfaces), or less vacuum than the cutoff (the surfaces see each other through it)."""
    heights = slab.positions[:, 2]
    thickness, vacuum = float(np.ptp(heights)), float(slab.cell[2, 2] - np.ptp(heights))
    problems = []
    if thickness < cutoff:
        problems.append(f"the slab is {thickness:.2f} Å thick, thinner than the model's cutoff {cutoff:.2f} Å: "
                        "raise min_slab")
    if vacuum < cutoff:
        problems.append(f"the vacuum is {vacuum:.2f} Å, less than the model's cutoff {cutoff:.2f} Å: raise min_vacuum")
    return problems


def _radius(symbol: str) -> float:
    return float(covalent_radii[atomic_numbers[symbol]])


def binding_height(slab: Atoms, adsorbate: Atoms) -> float:
    """Initial height of the binding atom above the surface layer: a fraction of its covalent bond length to the
    surface layer's most common element."""
    surface = [slab[i].symbol for i in np.flatnonzero(slab.get_tags() == 1)]
    common = max(set(surface), key=surface.count)
    return HEIGHT_FRACTION * (_radius(adsorbate[0].symbol) + _radius(common))


def place(slab: Atoms, adsorbate: Atoms, position: Sequence[float], label: str) -> Atoms:
    """``adsorbate`` (binding atom at its origin) put with its binding atom at ``position`` on ``slab``; tag 2 marks
    the adsorbate (OC20's convention); :class:`ScreeningError` if it overlaps the surface."""
    placed = adsorbate.copy()
    placed.positions += np.asarray(position) - placed.positions[0]
    placed.set_tags(2)
    configuration = slab.copy()
    configuration.extend(placed)
    configuration.info.update({"placement": label, "adsorbate": adsorbate.info.get("adsorbate", "")})
    distance, ratio = _contacts(configuration, len(slab))
    if ratio.min() < MIN_CONTACT:
        i, j = np.unravel_index(np.argmin(ratio), ratio.shape)
        raise ScreeningError(f"placement {label}: the adsorbate overlaps the surface ({placed[i].symbol}-"
                             f"{slab[j].symbol} {distance[i, j]:.2f} Å apart)")
    return configuration


def _contacts(atoms: Atoms, n_slab: int) -> tuple[np.ndarray, np.ndarray]:
    """Adsorbate-slab distances of ``atoms`` (adsorbate atoms x slab atoms, Å) and the same as fractions of each
    pair's covalent bond."""
    _, distance = get_distances(atoms.positions[n_slab:], atoms.positions[:n_slab], cell=atoms.cell, pbc=atoms.pbc)
    symbols = atoms.get_chemical_symbols()
    bond = np.add.outer([_radius(s) for s in symbols[n_slab:]], [_radius(s) for s in symbols[:n_slab]])
    return distance, distance / bond


def _contact_ratio(atoms: Atoms, n_slab: int) -> float:
    """The closest adsorbate-slab contact of ``atoms`` as a fraction of the two atoms' covalent bond."""
    return float(_contacts(atoms, n_slab)[1].min())


def pressed(configuration: Atoms, n_slab: int, contact: float = CLOSE_CONTACT) -> Atoms | None:
    """A copy of ``configuration`` with its adsorbate moved straight down until its closest contact with the slab is
    ``contact`` x their covalent bond (bisection on the height), or ``None`` if it is that close already.  These
    configurations sample the repulsive wall that a model's relaxations must not pass."""
    if _contact_ratio(configuration, n_slab) <= contact:
        return None
    top = configuration.positions[:n_slab, 2].max()
    low, high = 0.0, configuration.positions[n_slab:, 2].min() - top  # the drop, in Å, bracketing the contact
    trial = configuration.copy()
    for _ in range(50):
        drop = 0.5 * (low + high)
        trial.positions[n_slab:] = configuration.positions[n_slab:] - [0.0, 0.0, drop]
        low, high = (drop, high) if _contact_ratio(trial, n_slab) > contact else (low, drop)
    trial.positions[n_slab:] = configuration.positions[n_slab:] - [0.0, 0.0, high]
    trial.info["placement"] = f"{configuration.info.get('placement', '')}-pressed"
    return trial


def site_positions(slab: Atoms, height: float) -> dict[str, list[np.ndarray]]:
    """Symmetry-distinct ontop, bridge and hollow sites of the top surface, ``height`` Å above it (pymatgen's
    ``AdsorbateSiteFinder``)."""
    from pymatgen.analysis.adsorption import AdsorbateSiteFinder
    from pymatgen.io.ase import AseAtomsAdaptor

    finder = AdsorbateSiteFinder(AseAtomsAdaptor.get_structure(slab), selective_dynamics=False)
    found = finder.find_adsorption_sites(distance=height, positions=list(SITE_KINDS))
    return {kind: [np.asarray(p) for p in found.get(kind, [])] for kind in SITE_KINDS}


def placements(slab: Atoms, adsorbate: Atoms, n_random: int, seed: int = 0
               ) -> tuple[list[Atoms], list[tuple[str, str]]]:
    """The configurations to relax: the adsorbate upright on every heuristic site, and ``n_random`` placements at
    random points of the surface cell, rotated about the normal and tilted at random.  Returns the configurations and
    the placements rejected as (label, reason)."""
    rng = np.random.default_rng(seed)
    height = binding_height(slab, adsorbate)
    top = slab.positions[slab.get_tags() == 1, 2].max()
    candidates = [(f"{kind}-{k}", adsorbate, position) for kind, positions in site_positions(slab, height).items()
                  for k, position in enumerate(positions)]
    for k in range(n_random):
        molecule = adsorbate.copy()
        molecule.rotate(rng.uniform(0.0, RANDOM_TILT), "x", center=(0, 0, 0))
        molecule.rotate(rng.uniform(0.0, 360.0), "z", center=(0, 0, 0))
        u, v = rng.uniform(0.0, 1.0, 2)
        position = u * slab.cell[0] + v * slab.cell[1] + np.array([0.0, 0.0, top + height])
        candidates.append((f"random-{k}", molecule, position))
    configurations, rejected = [], []
    for label, molecule, position in candidates:
        try:
            configurations.append(place(slab, molecule, position, label))
        except ScreeningError as exc:
            rejected.append((label, str(exc)))
    return configurations, rejected


def relax_positions(atoms: Atoms, calculator: Calculator, fmax: float = RELAX_FMAX,
                    steps: int = RELAX_STEPS) -> tuple[Atoms, float, bool]:
    """Positions relaxed with BFGS (the slab's fixed layers stay); returns a copy, its energy and whether it
    converged."""
    relaxed = atoms.copy()
    relaxed.calc = calculator
    converged = bool(BFGS(relaxed, logfile=None).run(fmax=fmax, steps=steps))
    energy = float(relaxed.get_potential_energy())
    relaxed.calc = None
    return relaxed, energy, converged


def _bonds(atoms: Atoms, indices: Sequence[int], mult: float) -> set[tuple[int, int]]:
    """Pairs among ``indices`` closer than ``mult`` x the sum of their covalent radii (periodic images included)."""
    part = atoms[list(indices)]
    if len(part) < 2:
        return set()
    i, j = neighbor_list("ij", part, natural_cutoffs(part, mult=mult), self_interaction=False)
    return {(int(a), int(b)) for a, b in zip(i, j) if a < b}


def anomaly(initial: Atoms, relaxed: Atoms, n_slab: int) -> str | None:
    """AdsorbML's anomaly of a relaxed configuration, or None: ``dissociated`` (the adsorbate's bonds changed),
    ``desorbed`` (no adsorbate atom touches the slab), ``intercalated`` (an adsorbate atom went below the surface
    layer), ``surface changed`` (the slab's bonds changed; the only anomaly of a clean slab, ``n_slab`` atoms)."""
    slab, adsorbate = list(range(n_slab)), list(range(n_slab, len(initial)))
    if adsorbate:
        if _bonds(initial, adsorbate, BOND_MULT) != _bonds(relaxed, adsorbate, BOND_MULT):
            return "dissociated"
        _, distance = get_distances(relaxed.positions[adsorbate], relaxed.positions[slab], cell=relaxed.cell,
                                    pbc=relaxed.pbc)
        contact = SURFACE_MULT * np.add.outer([_radius(relaxed[i].symbol) for i in adsorbate],
                                              [_radius(relaxed[i].symbol) for i in slab])
        if not (distance < contact).any():
            return "desorbed"
        surface = np.flatnonzero(initial.get_tags()[:n_slab] == 1)
        if relaxed.positions[adsorbate, 2].min() < relaxed.positions[surface, 2].mean():
            return "intercalated"
    if _bonds(initial, slab, SURFACE_MULT) != _bonds(relaxed, slab, SURFACE_MULT):
        return "surface changed"
    return None


def site_of(relaxed: Atoms, n_slab: int) -> str:
    """The site the binding atom sits on, from its surface neighbours (those within :data:`SITE_SHELL` x the
    nearest distance): ontop, bridge, fcc/hcp hollow (three-fold; hcp with a second-layer atom beneath) or n-fold,
    with the coordinating elements, e.g. ``fcc hollow Cu3``; ``no contact`` if even the nearest surface atom is
    farther than :data:`SURFACE_MULT` x their covalent bond."""
    surface = np.flatnonzero(relaxed.get_tags()[:n_slab] == 1)
    binding = relaxed.positions[n_slab]
    _, distance = get_distances([binding], relaxed.positions[surface], cell=relaxed.cell, pbc=relaxed.pbc)
    distance = distance[0]
    nearest = int(np.argmin(distance))
    if distance[nearest] > SURFACE_MULT * (_radius(relaxed[n_slab].symbol) + _radius(relaxed[surface[nearest]].symbol)):
        return "no contact"
    near = surface[distance < SITE_SHELL * distance[nearest]]
    kind = {1: "ontop", 2: "bridge"}.get(len(near), f"{len(near)}-fold")
    if len(near) == 3:
        slab_layers = layers(relaxed, range(n_slab))
        below = slab_layers[-2] if len(slab_layers) > 1 else []
        lateral, _ = get_distances([binding], relaxed.positions[below], cell=relaxed.cell, pbc=relaxed.pbc)
        kind = "hcp hollow" if len(below) and (np.linalg.norm(lateral[0][:, :2], axis=1) < 0.6).any() \
            else "fcc hollow"
    return f"{kind} {Atoms([relaxed[i].symbol for i in near]).get_chemical_formula(mode='metal')}"


@dataclass
class Minimum:
    """One distinct adsorption minimum: its relaxed configuration, energy and site, and the placements that led to it."""

    atoms: Atoms
    energy: float
    site: str
    placements: list[str] = field(default_factory=list)


def merge_minima(relaxed: Sequence[tuple[Atoms, float]], n_slab: int) -> list[Minimum]:
    """Distinct minima, lowest first: configurations on the same site with energies within :data:`MERGE_ENERGY`
    are one minimum (its lowest-energy member)."""
    minima: list[Minimum] = []
    for atoms, energy in sorted(relaxed, key=lambda pair: pair[1]):
        site = site_of(atoms, n_slab)
        same = next((m for m in minima if m.site == site and energy - m.energy < MERGE_ENERGY), None)
        if same is None:
            minima.append(Minimum(atoms, energy, site, [atoms.info["placement"]]))
        else:
            same.placements.append(atoms.info["placement"])
    return minima
