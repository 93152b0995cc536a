"""Parameterization ablations as a grid of runs: sweep files, a resumable runner and the report."""

from paramviz.sweep.runner import SweepEvent, SweepSummary, run_sweep
from paramviz.sweep.spec import Arm, SweepSpec, expand, load_sweep, parse_sweep

__all__ = ["Arm", "SweepEvent", "SweepSpec", "SweepSummary", "expand", "load_sweep", "parse_sweep", "run_sweep"]
