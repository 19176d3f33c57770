"""Graph passes: one a file; each a frozen dataclass with ``run(graph) -> bool``."""

from fpgac.passes.binarize import Binarize
from fpgac.passes.clip_weights import ClipWeights
from fpgac.passes.fold_batchnorm import FoldBatchNorm
from fpgac.passes.fuse_bias import FuseBias
from fpgac.passes.fuse_softsign import FuseSoftsign
from fpgac.passes.manager import Pass, PassManager
from fpgac.passes.prune import MagnitudePrune, Scope, parse_prune, prune_passes
from fpgac.passes.prune_structured import DeadUnits, Norm, StructuredPrune
from fpgac.passes.refit import Refit
from fpgac.passes.simplify_reshapes import SimplifyReshapes

__all__ = [
    "Binarize",
    "ClipWeights",
    "DeadUnits",
    "FoldBatchNorm",
    "FuseBias",
    "FuseSoftsign",
    "MagnitudePrune",
    "Norm",
    "Pass",
    "PassManager",
    "Refit",
    "Scope",
    "SimplifyReshapes",
    "StructuredPrune",
    "parse_prune",
    "prune_passes",
]
