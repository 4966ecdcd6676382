"""Pockets by size, from Zeo++ (through pyzeo): the Voronoi network of the framework's atoms (Zeo++'s default
radii, a table from H to Lr), the channels a probe sphere of a given radius can travel through the crystal, and the
nodes it fits in but cannot reach from them: the pockets RASPA users block with Zeo++'s ``-block`` spheres, where a
guest about the probe's size that starts outside never gets in.  :func:`.pores.without_probe_pockets` takes out of a
:class:`~.pores.PoreMap` every voxel nearer to a pocket's sphere than to a channel's (not only the voxels inside the
spheres, which would leave the pocket's walls open)."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
from ase import Atoms

from ..errors import ScreeningError


@contextmanager
def _silenced() -> Iterator[None]:
    """Zeo++ and Voro++ print their progress from C++: send the process's stdout and stderr to /dev/null
    meanwhile."""
    saved = [os.dup(fd) for fd in (1, 2)]
    with open(os.devnull, "w") as null:
        for fd in (1, 2):
            os.dup2(null.fileno(), fd)
        try:
            yield
        finally:
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)


def _write_v1(atoms: Atoms, path: Path) -> None:
    """Zeo++'s .v1 format: the cell's vectors, then each atom's element and Cartesian position (Å)."""
    lines = ["Unit cell vectors:"] + [f"v{axis}= " + " ".join(f"{x:.10f}" for x in vector)
                                      for axis, vector in zip("abc", atoms.cell.array)]
    lines += [str(len(atoms))] + [f"{a.symbol} " + " ".join(f"{x:.10f}" for x in a.position) for a in atoms]
    path.write_text("\n".join(lines) + "\n")


def probe_nodes(framework: Atoms, probe_radius: float, name: str = "framework") -> tuple[np.ndarray, np.ndarray]:
    """The Voronoi nodes of ``framework`` a probe sphere of ``probe_radius`` (Å) fits in, as spheres (k, 4: centre in
    Å, radius), and whether each is a pocket: no channel through the crystal reaches it.  A framework where no
    channel admits the probe is a :class:`ScreeningError` naming it."""
    from pyzeo.extension import AtomNetwork

    with tempfile.TemporaryDirectory() as folder, _silenced():
        atoms_file, nodes_file = Path(folder) / "framework.v1", Path(folder) / "nodes.xyz"
        _write_v1(framework, atoms_file)
        network = AtomNetwork.read_from_V1(str(atoms_file), rad_flag=True)
        voronoi = network.perform_voronoi_decomposition()[0]
        channels, accessible = voronoi.find_channels(probe_radius)
        voronoi.write_to_XYZ(str(nodes_file), -np.inf)  # every node, in the order of ``accessible``
        rows = nodes_file.read_text().splitlines()[2:]
    nodes = np.array([[float(x) for x in row.split()[1:5]] for row in rows if row.strip()]).reshape(-1, 4)
    if len(nodes) != len(accessible):
        raise ScreeningError(f"{name}: Zeo++ listed {len(nodes)} Voronoi nodes and {len(accessible)} accessibilities")
    if not channels:
        raise ScreeningError(f"{name}: no channel through the crystal admits a probe of radius {probe_radius} Å "
                             "(Zeo++): no accessible pore")
    wide = nodes[:, 3] > probe_radius
    return nodes[wide], ~np.array(accessible, dtype=bool)[wide]
