"""The SUS2-MLIP ``.mtp`` text format (MLIP-2 style, version 1.1.0), read and written exactly.

A file holds the hyperparameters, the moment-tensor contraction tables (``alpha_*``) and, for a trained
model, the coefficients.  The coefficient layout follows the authors' description of their format:
``scal_coeffs`` holds, for each scaling channel k, the C*C pair values of alpha followed by the C*C values
of r0; each ``radial_coeffs`` row holds ``radial_basis_size`` Chebyshev coefficients followed by
``species_count`` per-element weights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FileFormatError
from .atomic import atomic_write

SCALING_MAPS = ("K", "L", "LK")


def _FLOAT(value: float) -> str:  # noqa: N802 - used like a format function
    """The authors' 15-digit scientific notation, or 16 digits where 15 would not read back bit-exactly."""
    text = f"{value:.15e}"
    return text if float(text) == value else f"{value:.16e}"


@dataclass
class MtpFile:
    """Everything an ``.mtp`` file holds, as plain Python/numpy values (coefficients may be ``None``)."""

    species_count: int
    L: int
    scaling_map: str
    min_dist: float
    max_dist: float
    radial_basis_size: int
    radial_funcs_count: int
    alpha_moments_count: int
    alpha_index_basic: np.ndarray  # (n_basic, 4): mu, a, b, c
    alpha_index_times: np.ndarray  # (n_times, 4): i, j, multiplicity, target
    alpha_moment_mapping: np.ndarray  # (n_scalar,)
    potential_name: str = "sus2"
    potential_tag: str = ""
    scaling: float = 1.0
    radial_basis_type: str = "RBChebyshev_sss"
    shift_coeffs: np.ndarray | None = None  # (C,)
    scal_coeffs: np.ndarray | None = None  # (2*C*C*n_channels,)
    radial_coeffs: np.ndarray | None = None  # (radial_funcs_count, R + C)
    species_coeffs: np.ndarray | None = None  # (C,)
    moment_coeffs: np.ndarray | None = None  # (n_scalar,)

    @property
    def n_channels(self) -> int:
        """Number of scaling channels (K_ in the authors' notation) implied by ``scaling_map``."""
        levels = self.L + 1
        if self.scaling_map == "K":
            return self.radial_funcs_count // levels
        if self.scaling_map == "L":
            return levels
        return self.radial_funcs_count

    @property
    def trained(self) -> bool:
        """True when every coefficient block is present."""
        blocks = (self.shift_coeffs, self.scal_coeffs, self.radial_coeffs, self.species_coeffs, self.moment_coeffs)
        return all(b is not None for b in blocks)

    def parameter_count(self) -> int:
        """Number of trainable numbers stored in the file."""
        c, r = self.species_count, self.radial_basis_size
        return c + 2 * c * c * self.n_channels + self.radial_funcs_count * (r + c) + c + len(self.alpha_moment_mapping)


def _numbers(text: str, path: object, line: int) -> list[str]:
    body = text.strip()
    if not (body.startswith("{") and body.endswith("}")):
        raise FileFormatError(path, line, f"expected a {{...}} list, found {body[:40]!r}")
    return [t for t in re.split(r"[{},\s]+", body) if t]


def _floats(text: str, count: int, key: str, path: object, line: int) -> np.ndarray:
    tokens = _numbers(text, path, line)
    if len(tokens) != count:
        raise FileFormatError(path, line, f"{key} has {len(tokens)} values, expected {count}")
    try:
        values = np.array([float(t) for t in tokens])
    except ValueError as exc:
        raise FileFormatError(path, line, f"{key}: {exc}") from None
    if not np.all(np.isfinite(values)):
        raise FileFormatError(path, line, f"{key} holds a NaN or infinite value")
    return values


def _ints(text: str, count: int, width: int, key: str, path: object, line: int) -> np.ndarray:
    tokens = _numbers(text, path, line)
    if len(tokens) != count * width:
        raise FileFormatError(path, line, f"{key} has {len(tokens) // width} entries, expected {count}")
    try:
        values = np.array([int(t) for t in tokens], dtype=np.int64)
    except ValueError as exc:
        raise FileFormatError(path, line, f"{key}: {exc}") from None
    return values.reshape(count, width) if width > 1 else values


class _Entries:
    """The ``key = value`` entries of one file, consumed one by one, with line numbers for errors."""

    def __init__(self, path: Path, entries: dict[str, tuple[str, int]], last_line: int) -> None:
        self.path, self.entries, self.last_line = path, entries, last_line

    def take(self, key: str, default: str | None = None) -> tuple[str, int]:
        if key in self.entries:
            return self.entries.pop(key)
        if default is not None:
            return default, 0
        raise FileFormatError(self.path, self.last_line, f"missing required key {key!r} (file truncated?)")

    def integer(self, key: str) -> int:
        value, line = self.take(key)
        try:
            return int(value)
        except ValueError:
            raise FileFormatError(self.path, line, f"{key} must be an integer, found {value!r}") from None

    def number(self, key: str, default: str | None = None) -> float:
        value, line = self.take(key, default)
        try:
            return float(value)
        except ValueError:
            raise FileFormatError(self.path, line, f"{key} must be a number, found {value!r}") from None

    def floats(self, key: str, count: int) -> np.ndarray | None:
        if key not in self.entries:
            return None
        value, line = self.entries.pop(key)
        return _floats(value, count, key, self.path, line)

    def ints(self, key: str, count: int, width: int) -> np.ndarray:
        value, line = self.take(key)
        return _ints(value, count, width, key, self.path, line)


def _split_lines(path: Path, lines: list[str]) -> tuple[dict[str, tuple[str, int]], list[tuple[str, int]]]:
    entries: dict[str, tuple[str, int]] = {}
    radial_rows: list[tuple[str, int]] = []
    i = 2
    while i < len(lines):
        text, lineno = lines[i].strip(), i + 1
        i += 1
        if not text:
            continue
        if text == "radial_coeffs":
            if i >= len(lines) or not re.fullmatch(r"\d+-\d+", lines[i].strip()):
                raise FileFormatError(path, i + 1, "radial_coeffs must be followed by a '0-0' block header")
            i += 1
            while i < len(lines) and lines[i].strip().startswith("{"):
                radial_rows.append((lines[i], i + 1))
                i += 1
            continue
        if "=" not in text:
            raise FileFormatError(path, lineno, f"expected 'key = value', found {text[:60]!r}")
        key, value = (s.strip() for s in text.split("=", 1))
        if key in entries:
            raise FileFormatError(path, lineno, f"{key} is given twice")
        entries[key] = (value, lineno)
    return entries, radial_rows


def read_mtp(path: str | Path) -> MtpFile:
    """Parse an ``.mtp`` file; raise :class:`FileFormatError` naming the file and line on any defect."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise FileFormatError(path, None, f"cannot read model file: {exc}") from None
    if not lines or lines[0].strip() != "MTP":
        raise FileFormatError(path, 1, "not an MTP model file (first line must be 'MTP')")
    if len(lines) < 2 or lines[1].replace(" ", "") != "version=1.1.0":
        raise FileFormatError(path, 2, "MTP file must have 'version = 1.1.0'")
    entries, radial_rows = _split_lines(path, lines)
    e = _Entries(path, entries, len(lines))

    name = e.take("potential_name", "sus2")[0]
    scaling = e.number("scaling", "1.0")
    L = e.integer("L")
    scaling_map, map_line = e.take("scaling_map")
    if scaling_map not in SCALING_MAPS:
        raise FileFormatError(path, map_line, f"scaling_map must be one of {SCALING_MAPS}, found {scaling_map!r}")
    species_count = e.integer("species_count")
    if species_count < 1:
        raise FileFormatError(path, len(lines), "species_count must be positive")
    tag = e.take("potential_tag", "")[0]
    rb_type, rb_line = e.take("radial_basis_type")
    if rb_type not in ("RBChebyshev_sss", "RBChebyshev_sss_lmp"):
        raise FileFormatError(path, rb_line, f"radial basis {rb_type!r} is not supported (RBChebyshev_sss only)")
    min_dist, max_dist = e.number("min_dist"), e.number("max_dist")
    rb_size, n_funcs = e.integer("radial_basis_size"), e.integer("radial_funcs_count")
    n_moments = e.integer("alpha_moments_count")
    basic = e.ints("alpha_index_basic", e.integer("alpha_index_basic_count"), 4)
    times = e.ints("alpha_index_times", e.integer("alpha_index_times_count"), 4)
    mapping = e.ints("alpha_moment_mapping", e.integer("alpha_scalar_moments"), 1)
    mtp = MtpFile(
        species_count=species_count, L=L, scaling_map=scaling_map, min_dist=min_dist, max_dist=max_dist,
        radial_basis_size=rb_size, radial_funcs_count=n_funcs, alpha_moments_count=n_moments,
        alpha_index_basic=basic, alpha_index_times=times, alpha_moment_mapping=mapping,
        potential_name=name, potential_tag=tag, scaling=scaling, radial_basis_type=rb_type,
    )
    _check_tables(mtp, path, len(lines))
    c = species_count
    mtp.shift_coeffs = e.floats("shift_coeffs", c)
    mtp.scal_coeffs = e.floats("scal_coeffs", 2 * c * c * mtp.n_channels)
    if radial_rows:
        if len(radial_rows) != n_funcs:
            raise FileFormatError(path, radial_rows[-1][1],
                                  f"radial_coeffs has {len(radial_rows)} rows, expected radial_funcs_count={n_funcs}")
        mtp.radial_coeffs = np.stack(
            [_floats(row, rb_size + c, "radial_coeffs row", path, line) for row, line in radial_rows])
    mtp.species_coeffs = e.floats("species_coeffs", c)
    mtp.moment_coeffs = e.floats("moment_coeffs", len(mapping))
    if e.entries:
        key, (_, line) = next(iter(e.entries.items()))
        raise FileFormatError(path, line, f"unknown key {key!r}")
    return mtp


def _check_tables(mtp: MtpFile, path: Path, last: int) -> None:
    basic, times, mapping = mtp.alpha_index_basic, mtp.alpha_index_times, mtp.alpha_moment_mapping
    n_basic, n_mom = len(basic), mtp.alpha_moments_count
    if mtp.radial_funcs_count % (mtp.L + 1) and mtp.scaling_map == "K":
        raise FileFormatError(path, last, "radial_funcs_count must be a multiple of L+1 for scaling_map = K")
    if basic[:, 0].max(initial=-1) != mtp.radial_funcs_count - 1 or basic.min(initial=0) < 0:
        raise FileFormatError(path, last, "alpha_index_basic does not use radial functions 0..radial_funcs_count-1")
    if len(times) and (times[:, [0, 1, 3]].max() >= n_mom or times[:, [0, 1, 3]].min() < 0):
        raise FileFormatError(path, last, "alpha_index_times refers to a moment outside alpha_moments_count")
    if len(times) and times[:, 3].min() < n_basic:
        raise FileFormatError(path, last, "alpha_index_times writes into a basic moment")
    if mapping.max(initial=-1) >= n_mom or mapping.min(initial=0) < 0:
        raise FileFormatError(path, last, "alpha_moment_mapping refers to a moment outside alpha_moments_count")


def _list(values, fmt=_FLOAT) -> str:
    return "{" + ", ".join(fmt(v) for v in values) + "}"


def _assignments(indent: str, **values: object) -> list[str]:
    """``key = value`` lines of an ``.mtp`` file, in the order given."""
    return [f"{indent}{key} = {value}" for key, value in values.items()]


def format_mtp(mtp: MtpFile) -> str:
    """Render a model in the authors' layout (15-digit scientific notation, as their writer prints)."""
    out = ["MTP", "version = 1.1.0", f"potential_name = {mtp.potential_name}"]
    if mtp.scaling != 1.0:
        out.append(f"scaling = {_FLOAT(mtp.scaling)}")
    out += _assignments("", L=mtp.L, scaling_map=mtp.scaling_map, species_count=mtp.species_count,
                        potential_tag=mtp.potential_tag, radial_basis_type=mtp.radial_basis_type)
    out += _assignments("\t", min_dist=_FLOAT(mtp.min_dist), max_dist=_FLOAT(mtp.max_dist),
                        radial_basis_size=mtp.radial_basis_size, radial_funcs_count=mtp.radial_funcs_count)
    if mtp.shift_coeffs is not None:
        out.append(f"shift_coeffs = {_list(mtp.shift_coeffs)}")
    if mtp.scal_coeffs is not None:
        out.append(f"scal_coeffs = {_list(mtp.scal_coeffs)}")
    if mtp.radial_coeffs is not None:
        out += ["\tradial_coeffs", "\t\t0-0"] + [f"\t\t\t{_list(row)}" for row in mtp.radial_coeffs]
    table = lambda rows: "{" + ", ".join(  # noqa: E731
        "{" + ", ".join(str(int(v)) for v in r) + "}" for r in rows) + "}"
    out += _assignments("", alpha_moments_count=mtp.alpha_moments_count,
                        alpha_index_basic_count=len(mtp.alpha_index_basic),
                        alpha_index_basic=table(mtp.alpha_index_basic),
                        alpha_index_times_count=len(mtp.alpha_index_times),
                        alpha_index_times=table(mtp.alpha_index_times),
                        alpha_scalar_moments=len(mtp.alpha_moment_mapping),
                        alpha_moment_mapping=_list(mtp.alpha_moment_mapping, lambda v: str(int(v))))
    if mtp.species_coeffs is not None:
        out.append(f"species_coeffs = {_list(mtp.species_coeffs)}")
    if mtp.moment_coeffs is not None:
        out.append(f"moment_coeffs = {_list(mtp.moment_coeffs)}")
    return "\n".join(out)


def write_mtp(mtp: MtpFile, path: str | Path) -> None:
    """Write a model atomically (temporary file + rename), so a killed writer never leaves half a file."""
    text = format_mtp(mtp)
    atomic_write(path, lambda fh: fh.write(text))
