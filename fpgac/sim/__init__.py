"""Interpreters of the IR: the float reference (and, later, the bit-exact fixed-point golden model)."""

from fpgac.sim.reference import evaluate_fixed, evaluate_float, run_fixed, run_float

__all__ = ["evaluate_fixed", "evaluate_float", "run_fixed", "run_float"]
