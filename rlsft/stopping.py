"""A run asked to stop ends at the step it is on, with a checkpoint of that step, instead of losing every step
since its last checkpoint.

The request is SIGTERM: what a scheduler sends at a job's time limit or preemption (SLURM, Kubernetes), what
`kill` and `docker stop` send, and what torchrun passes on to its ranks when it is stopped. While a run trains,
SIGTERM only marks the request; the loop ends the step, writes the checkpoint and raises errors.RunStopped,
which the CLI reports in one sentence with exit status 143 (128 + SIGTERM, as a shell reports a process it
ended). Under torchrun the ranks stop together at the first logging step (`log_every`) after the signal, where
they meet anyway. Outside training SIGTERM ends the process as usual. Once made, the request stands for the
rest of the process: a sweep's later jobs in the same process do not start. A sweep whose launcher runs its jobs
in worker processes (hydra's joblib launcher) passes SIGTERM on to them: each stops its run so, and the sweep
reports the stop, where the signal alone would have ended it and left its workers training.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from rlsft import distributed

_request = threading.Event()


def requested() -> bool:
    """Whether this process was asked to stop."""
    return _request.is_set()


@contextmanager
def sigterm_requests_a_stop() -> Iterator[None]:
    """While the block runs, SIGTERM marks a stop request instead of ending the process. Python runs signal
    handlers in the main thread alone, so elsewhere (a thread of a launcher) SIGTERM keeps its own handling."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, lambda signum, frame: _request.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


@contextmanager
def sigterm_passed_on_to_workers() -> Iterator[None]:
    """While the block runs, SIGTERM is passed on to this process's worker processes (a sweep launcher's, each of
    which holds SIGTERM as a request while its job runs) and marks the request here; with no worker processes (the
    jobs run here, or on a cluster), SIGTERM acts as it would without this block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def pass_on(signum: int, frame: object) -> None:
        workers = multiprocessing.active_children()
        if not workers:
            signal.signal(signal.SIGTERM, before)
            signal.raise_signal(signal.SIGTERM)
            return
        _request.set()
        for worker in workers:
            worker.terminate()  # SIGTERM

    before = signal.signal(signal.SIGTERM, pass_on)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def requested_on_any_rank(device: torch.device, every_rank_trains: bool) -> bool:
    """Whether any rank was asked to stop, where `every_rank_trains` this run (data parallel under torchrun): the
    ranks, signalled at different steps, stop at the same one (a scalar all-reduce, and a host sync, each time
    they ask). Else (one process, or a run rank 0 trains alone, as pi_ref) this process's request."""
    if not (every_rank_trains and distributed.active()):
        return requested()
    return bool(distributed.all_ranks_max(torch.tensor(float(requested()), device=device)).item())
