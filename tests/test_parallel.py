"""prepost.parallel: a job's pieces side by side in forked workers, or in order in the job."""

import os

import pytest

from prepost.parallel import run_pieces
from prepost.prepare.pairing import PairingError


def _pieces(n):
    return [(lambda i=i: (i, os.getpid())) for i in range(n)]


def test_results_in_the_order_given_from_forked_workers():
    got = run_pieces(_pieces(5), workers=2)
    assert [i for i, _ in got] == [0, 1, 2, 3, 4]
    pids = {pid for _, pid in got}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


@pytest.mark.parametrize("workers", [1, 0])
def test_one_worker_runs_in_the_job_itself(workers):
    got = run_pieces(_pieces(3), workers=workers)
    assert got == [(0, os.getpid()), (1, os.getpid()), (2, os.getpid())]


def test_one_piece_runs_in_the_job_itself():
    assert run_pieces(_pieces(1), workers=2) == [(0, os.getpid())]


def test_a_pieces_error_is_raised_in_the_job_as_raised():
    def bad():
        raise PairingError("dataset 'x': patient P1 has two pre samples")

    with pytest.raises(PairingError, match="patient P1 has two pre samples"):
        run_pieces([_pieces(1)[0], bad], workers=2)


def test_closures_see_the_jobs_state_without_pickling():
    """Pieces are inherited by the fork, not sent: a closure over an unpicklable object works."""
    lock_like = (lambda: None)  # lambdas do not pickle
    got = run_pieces([lambda: lock_like() is None, lambda: 2], workers=2)
    assert got == [True, 2]
