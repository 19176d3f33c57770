"""Graph passes: one a file; each a frozen dataclass with ``run(graph) -> bool``."""

from fpgac.passes.fold_batchnorm import FoldBatchNorm
from fpgac.passes.fuse_bias import FuseBias
from fpgac.passes.manager import Pass, PassManager
from fpgac.passes.simplify_reshapes import SimplifyReshapes

__all__ = ["FoldBatchNorm", "FuseBias", "Pass", "PassManager", "SimplifyReshapes"]
