"""The SUS2 radial basis ``RBChebyshev_sss``: Chebyshev polynomials of a tanh-embedded, per-pair scaled distance.

For a pair of species (I, J) and scaling channel k, with ksi = tanh(alpha_IJk (r - r0_IJk) / 2) (the universal-EOS
scaling of the paper), the basis is

    Q_0 = (r - r_cut)^2,   Q_1 = ksi (r - r_cut)^2,   Q_n = 2 ksi Q_{n-1} - Q_{n-2},

i.e. Chebyshev polynomials T_n(ksi) times the smooth cutoff (r - r_cut)^2, which vanishes with zero slope at r_cut.
"""

from __future__ import annotations

import torch


def chebyshev(ksi_arg: torch.Tensor, size: int, derivative: bool = True
              ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Chebyshev polynomials T_n(tanh(x)) for n < size, their x-derivatives, and tanh(x); shapes (..., size)."""
    ksi = torch.tanh(ksi_arg)
    t = [torch.ones_like(ksi), ksi]
    for _ in range(2, size):
        t.append(2.0 * ksi * t[-1] - t[-2])
    values = torch.stack(t[:size], dim=-1)
    if not derivative:
        return values, None, ksi
    dksi = 1.0 - ksi.square()
    dt = [torch.zeros_like(ksi), dksi]
    for n in range(2, size):
        dt.append(2.0 * (dksi * t[n - 1] + ksi * dt[-1]) - dt[-2])
    return values, torch.stack(dt[:size], dim=-1), ksi


def cutoff(r: torch.Tensor, r_cut: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The smooth cutoff (r - r_cut)^2 and its r-derivative."""
    dr = r - r_cut
    return dr.square(), 2.0 * dr
