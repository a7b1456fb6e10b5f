"""Numerical kernels the op table's forwards need and numpy lacks (on arrays, given ``xp``)."""

from __future__ import annotations

import math

import numpy as np


def sigmoid(xp, x):
    """1 / (1 + exp(-x)), taking exp of a non-positive number only: no overflow for large |x|."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def erf(xp, x):
    """The error function (cupyx's on the GPU, ``erf_numpy`` on the CPU)."""
    if xp is not np:
        import cupyx.scipy.special as special  # noqa: PLC0415 - only on the GPU path

        return special.erf(x)
    return erf_numpy(np.asarray(x, dtype=np.float64)).astype(x.dtype)[()]


def erf_numpy(x):
    """erf to double precision without scipy: series below 2.5, continued fraction above."""
    out = np.empty_like(x)
    a = np.abs(x)
    small = a < 2.5
    s = x[small]
    term = s.copy()
    total = s.copy()
    s2 = s * s
    for k in range(1, 60):
        term = -term * s2 / k
        total = total + term / (2 * k + 1)
    out[small] = 2.0 / math.sqrt(math.pi) * total
    big = a[~small]
    # erfc(z) by Lentz's continued fraction
    f = np.zeros_like(big)
    for k in range(60, 0, -1):
        f = (k / 2.0) / (big + f)
    erfc = np.exp(-big * big) / math.sqrt(math.pi) / (big + f)
    out[~small] = np.sign(x[~small]) * (1.0 - erfc)
    return out
