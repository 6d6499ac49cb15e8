"""Worker processes that answer requests under a hard deadline each, for verifiers whose library can hang.

Each worker is a fresh interpreter running a script by path (math_worker.py) that talks over two pipes.
A request past its deadline cannot be interrupted (sympy may be deep in C code), so its worker is killed
and a replacement started while the other workers carry on; that request's answer is None. The clock of
a request starts when a worker receives it, so a batch's wait is bounded by its share of deadlines.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from pathlib import Path

from rlsft.errors import RLSFTError


class Worker:
    """One worker process, its pipes, and the request it holds (None: idle) with that request's due time."""

    def __init__(self, script: Path, startup_seconds: float) -> None:
        child_requests, requests = os.pipe()
        replies, child_replies = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(child_requests), str(child_replies)],
            pass_fds=(child_requests, child_replies),
            stdin=subprocess.DEVNULL,
        )
        os.close(child_requests)
        os.close(child_replies)  # so that the worker's exit reads as EOF here
        self.requests, self.replies = Connection(requests, readable=False), Connection(replies, writable=False)
        self.ready, self.request, self.sent = False, None, 0.0
        self.due = time.monotonic() + startup_seconds  # until it says "ready", then per request

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.requests.close()
        self.replies.close()


class DeadlineWorkers:
    """`count` workers of `script`; `map(requests)` answers each within `deadline_seconds` or gives None."""

    def __init__(self, owner: str, script: Path, count: int, deadline_seconds: float, startup_seconds: float) -> None:
        self.owner, self.script, self.deadline_seconds, self.startup_seconds = (
            owner,
            script,
            deadline_seconds,
            startup_seconds,
        )
        self.workers = [Worker(script, startup_seconds) for _ in range(count)]
        self.misses = 0  # requests cut off so far
        self.seconds: list[float] = []  # the last map's time per request, from reaching a worker to its answer

    def map(self, requests: Sequence[tuple]) -> list:
        answers: list = [None] * len(requests)
        self.seconds = [0.0] * len(requests)
        waiting = deque(range(len(requests)))
        while waiting or any(worker.request is not None for worker in self.workers):
            for worker in self.workers:
                if worker.ready and worker.request is None and waiting:
                    try:
                        worker.requests.send(requests[waiting[0]])
                    except OSError:  # it died while idle (killed for memory): the request waits for another
                        self.restart(worker)
                        continue
                    worker.request, worker.sent = waiting.popleft(), time.monotonic()
                    worker.due = worker.sent + self.deadline_seconds
            # Starting workers are waited on only while requests wait for them.
            watched = [
                worker for worker in self.workers if worker.request is not None or (waiting and not worker.ready)
            ]
            wait([worker.replies for worker in watched], max(0.0, min(w.due for w in watched) - time.monotonic()))
            for worker in watched:
                if worker.replies.poll():
                    self.receive(worker, answers)
                elif time.monotonic() > worker.due:
                    self.replace(worker)
        return answers

    def receive(self, worker: Worker, answers: list) -> None:
        try:
            message = worker.replies.recv()
        except EOFError:  # it died: killed for memory on a hostile answer, or it never started
            self.replace(worker)
            return
        if not worker.ready:
            worker.ready = True
            return
        ok, answer = message
        if not ok:
            raise RuntimeError(f"{self.owner}'s worker failed on a request:\n{answer}")
        self.seconds[worker.request] = time.monotonic() - worker.sent
        answers[worker.request], worker.request = answer, None

    def replace(self, worker: Worker) -> None:
        """Kills a worker that missed its deadline (its request's answer stays None) and starts another."""
        if not worker.ready:
            self.close()  # this worker with the others
            raise RLSFTError(
                f"{self.owner}'s worker processes did not start within {self.startup_seconds:g} s (exit status"
                f" {worker.process.returncode}, see the error above); check that `{sys.executable} {self.script}`"
                " can import math-verify, or raise verifier.options.startup_seconds on a loaded machine."
            )
        self.seconds[worker.request] = time.monotonic() - worker.sent
        self.misses += 1
        self.restart(worker)

    def restart(self, worker: Worker) -> None:
        """A fresh worker in this one's place."""
        worker.kill()
        self.workers[self.workers.index(worker)] = Worker(self.script, self.startup_seconds)

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()
        self.workers = []
