"""`rlsft bench <suite>`: each suite a sweep of runs plus a report built from their folders."""

from rlsft.bench import bound, grid, speed

SUITES = {"bound": bound.run, "control": grid.run, "speed": speed.run, "text": grid.run}

__all__ = ["SUITES"]
