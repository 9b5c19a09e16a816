"""Independent pieces of one job run side by side in forked worker processes.

A Snakemake job of this workflow covers a whole dataset (every contrast's DE, every contrast's
enrichment): one interpreter start and one round of imports instead of one per contrast. With
the job's threads > 1 its pieces still use the cores they were given: workers are forked from
the job's process after its imports (no re-import, no pickling of the work itself; only the
results travel back), one piece per worker at a time, in the order given (put the longest
first). With one thread, or one piece, or no fork on the platform, they run in order in the
process itself. An error in a piece is raised in the job as it was raised in the worker.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Sequence

_PIECES: Sequence[Callable[[], Any]] = ()  # read by the forked workers (inherited, not sent)


def _run(i: int) -> Any:
    return _PIECES[i]()


def run_pieces(pieces: Sequence[Callable[[], Any]], workers: int) -> list:
    """Call each zero-argument ``pieces[i]`` once; returns their results in the given order.
    Results must be picklable when ``workers`` > 1."""
    global _PIECES
    workers = min(int(workers), len(pieces))
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [piece() for piece in pieces]
    _PIECES = list(pieces)
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_run, range(len(pieces))))
    finally:
        _PIECES = ()
