"""Interpreters of the IR: the float reference (and, later, the bit-exact fixed-point golden model)."""

from fpgac.sim.reference import evaluate_float, run_float

__all__ = ["evaluate_float", "run_float"]
