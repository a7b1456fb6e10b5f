"""The thread pool for large elementwise forwards.

numpy's ufuncs release the GIL, so a large elementwise op is split into row blocks computed by
a pool of threads (one block in the calling thread).  Results are identical to one call; small
arrays and numpy scalars take the plain path.  ``GRADCLI_NUM_THREADS`` sets the number of
threads (default: one per CPU).
"""

from __future__ import annotations

import os

import numpy as np

_nd = np.ndarray
#: arrays with at least this many elements are split across threads
BIG = 1 << 17


def _count() -> int:
    try:
        return max(1, int(os.environ.get("GRADCLI_NUM_THREADS", "0")) or os.cpu_count() or 1)
    except ValueError:
        return os.cpu_count() or 1


class _Pool:
    """The threads, started on the first large op (most programs never need them)."""

    def __init__(self):
        self.size = None
        self.executor = None

    def start(self):
        self.size = _count()
        if self.size > 1:
            # imported here: start-up time, and most programs never get here
            from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

            self.executor = ThreadPoolExecutor(self.size - 1, thread_name_prefix="gradcli")


_pool = _Pool()


def parallel(ufunc, args):
    """``ufunc(*args)`` on numpy arrays, in row blocks on several threads when worth it."""
    if _pool.size is None:
        _pool.start()
    k = _pool.size
    shape = np.broadcast_shapes(*[a.shape if a.__class__ is _nd else () for a in args])
    if k < 2 or not shape or shape[0] < 2 * k:
        return ufunc(*args)
    out = np.empty(shape, np.result_type(*args))
    views = [np.broadcast_to(a, shape) if a.__class__ is _nd else a for a in args]
    edges = [shape[0] * i // k for i in range(k + 1)]
    errors = np.geterr()

    def block(lo, hi):
        with np.errstate(**errors):
            ufunc(*[v[lo:hi] if v.__class__ is _nd else v for v in views], out=out[lo:hi])

    futures = [_pool.executor.submit(block, edges[i], edges[i + 1]) for i in range(1, k)]
    block(edges[0], edges[1])
    for f in futures:
        f.result()
    return out


def binary(ufunc, operator_fn):
    """Forward of an arithmetic operator: the Python operator (fast on scalars), or threads."""

    def fwd(xp, x, y):
        if (x.__class__ is _nd and x.size >= BIG) or (y.__class__ is _nd and y.size >= BIG):
            return parallel(ufunc, (x, y))
        return operator_fn(x, y)

    return fwd


def unary(name):
    """Forward of ``xp.<name>``, on threads for large numpy arrays."""
    ufunc = getattr(np, name)

    def fwd(xp, x):
        if xp is np:
            if x.__class__ is _nd and x.size >= BIG:
                return parallel(ufunc, (x,))
            return ufunc(x)
        return getattr(xp, name)(x)

    return fwd
