"""`rlsft bench <suite>`: each suite a sweep of runs plus a report built from their folders."""

from rlsft.bench import control

SUITES = {"control": control.run}

__all__ = ["SUITES"]
