"""Capping BLAS threads around a numpy forward pass.

On a busy 2-core box, or with several worker processes, one thread is much faster than two:
OpenBLAS threads spin-wait, and small matmuls suffer badly from oversubscription.
"""
from __future__ import annotations

import contextlib

_CONTROLLER = None


def blas_limit(threads: int | None):
    """A context that caps BLAS at `threads` (None: leave BLAS as configured)."""
    if threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import ThreadpoolController  # comes with scikit-learn

    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()  # scanning loaded libraries is the slow part
    return _CONTROLLER.limit(limits=threads, user_api="blas")
