"""The golden model and the float reference, as users and tests call them.

The interpreter itself lives with the ops' semantics (:mod:`fpgac.ir.semantics.interpret`), so
that passes (calibration, refit) can run the float network without depending on this package;
this is its public home.
"""

from fpgac.ir.semantics.interpret import evaluate_fixed, evaluate_float, run_fixed, run_float

__all__ = ["evaluate_fixed", "evaluate_float", "run_fixed", "run_float"]
