"""Colourfulness's arithmetic (Hasler & Suesstrunk 2003) in numpy: the one implementation both scorers call.

rg = R - G and 2 yb = R + G - 2B are integers, so their sums and sums of squares are exact in int64
and the population variance n * sum(x^2) - sum(x)^2 is an exact integer (Python ints): the textbook
value correctly rounded, with no float64 copy of the frames. `colorfulness_from_sums` is the float
formula; the torch metric (`metrics.colorfulness`) takes the same integer sums with torch on other
devices, and both scorers end in this one formula, so their floats are identical.
"""

from __future__ import annotations

import math

import numpy as np


def plane_sums(r: np.ndarray, g: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int]:
    """(sum rg, sum rg^2, sum 2yb, sum (2yb)^2) of one frame's uint8 R, G, B planes, exact.

    int32 holds every term (|2yb| <= 510, (2yb)^2 <= 260100) and the sums go to int64.
    """
    rg = np.subtract(r, g, dtype=np.int32)
    yb2 = np.add(r, g, dtype=np.int32)
    yb2 -= b
    yb2 -= b
    s_rg, s_yb2 = int(rg.sum(dtype=np.int64)), int(yb2.sum(dtype=np.int64))
    rg *= rg
    yb2 *= yb2
    return s_rg, int(rg.sum(dtype=np.int64)), s_yb2, int(yb2.sum(dtype=np.int64))


def colorfulness_from_sums(n: int, s_rg: int, s_rg2: int, s_yb2: int, s_yb2sq: int) -> float:
    """Colourfulness of a frame of `n` pixels from its `plane_sums`: sqrt(sd_rg^2 + sd_yb^2) +
    0.3 sqrt(mean_rg^2 + mean_yb^2), population standard deviations, signed opponents."""
    var_rg = (n * s_rg2 - s_rg * s_rg) / (n * n)
    var_yb = (n * s_yb2sq - s_yb2 * s_yb2) / (4 * n * n)
    mean_rg, mean_yb = s_rg / n, s_yb2 / (2 * n)
    return math.sqrt(var_rg + var_yb) + 0.3 * math.sqrt(mean_rg * mean_rg + mean_yb * mean_yb)


def plane_colorfulness(r: np.ndarray, g: np.ndarray, b: np.ndarray) -> float:
    """Colourfulness of one frame given as its uint8 R, G, B planes."""
    return colorfulness_from_sums(r.size, *plane_sums(r, g, b))
