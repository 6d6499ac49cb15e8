"""`rlsft bench <suite>`: each suite a sweep of runs plus a report built from their folders."""

from rlsft.bench import bound, control, speed

SUITES = {"bound": bound.run, "control": control.run, "speed": speed.run}

__all__ = ["SUITES"]
