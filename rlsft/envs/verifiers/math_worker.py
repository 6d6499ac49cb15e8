"""math_equivalence's worker: math-verify's parse and verify, one request at a time, run as its own script.

math_equivalence starts this file by path in a fresh interpreter (deadline_workers.py), never through
rlsft's packages: importing those loads torch and MuJoCo (3 s a worker, paid again for every worker
that a deadline kills), and a fresh interpreter never re-runs the user's script, so a script that calls
rlsft without an `if __name__ == "__main__":` guard works. math-verify is asymmetric: gold first.
"""

from __future__ import annotations

import logging
import re
import signal
import sys
import traceback
from functools import lru_cache
from multiprocessing.connection import Connection

DELIMITER = re.compile(r"(?<!\\)\$|\\\(|\\\[|\\boxed")  # not the escaped dollar of "\$18.90"
PLAIN_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")  # "dollars", "inf"; not "\sqrt", not "x"
ENVIRONMENT = re.compile(r"\\(?:begin|end)\{[A-Za-z*]+\}")  # "pmatrix" is no plain word


@lru_cache(maxsize=256)  # a prompt's K completions share one gold; a batch has few (256 megabyte golds fit)
def read_gold(answer: str) -> list:
    """math-verify's reading of a gold answer, [] when it reads none.

    A bare expression with no math delimiter and no plain word (`\\frac{\\sqrt{3}}{2}`, `(-\\infty, 3)`,
    `1, 2`) is read as LaTeX, wrapped in `$...$`: read as text, math-verify would take only a number
    from it (2 of `2\\sqrt{3}`). Anything else is read as text first, then wrapped (`inf` becomes oo).
    """
    from math_verify import parse

    if DELIMITER.search(answer) or PLAIN_WORD.search(ENVIRONMENT.sub("", answer)):
        forms = [answer, f"${answer}$"]
    else:
        forms = [f"${answer}$", answer]
    for form in forms:
        if parsed := parse(form):
            return parsed
    return []


def judge(completion: str, answer: str, options: dict) -> tuple[bool, bool]:
    """(success, parse_error) of one completion; a gold it cannot read scores it wrong, parse_error."""
    from math_verify import parse, verify

    gold, predicted = read_gold(answer), parse(completion)
    success = bool(gold and predicted) and verify(gold, predicted, **options)
    return success, not (gold and predicted)


def readable(answer: str) -> bool:
    return bool(read_gold(answer))


HANDLERS = {"judge": judge, "readable": readable}


def serve(requests: Connection, replies: Connection) -> None:
    """Answers (handler, *arguments) requests with (True, result), or (False, traceback) for a bug, until EOF."""
    judge("$\\frac{1}{2}$", "$0.5$", {})  # math-verify's lazy imports and first parse, before any deadline
    replies.send("ready")
    while True:
        try:
            handler, *arguments = requests.recv()
        except EOFError:  # the verifier closed, or its process ended
            return
        try:
            replies.send((True, HANDLERS[handler](*arguments)))
        except Exception:
            replies.send((False, traceback.format_exc()))


if __name__ == "__main__":
    # The verifier ends its workers; a SIGTERM sent to every process of a job (SLURM) finds the run finishing its
    # step before it stops (rlsft/stopping.py), and that step's answers still to be judged
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # our deadline decides; its warnings quote whole inputs
    del sys.path[0]  # this folder, which Python put first: its modules must not shadow math-verify's imports
    serve(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False))
