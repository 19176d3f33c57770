"""ONNX -> IR: the only package that imports ``onnx``.

Every ONNX tensor is tracked as either a constant (a numpy array, folded at compile time) or a
run-time tensor: an IR ``Value`` with a per-sample shape plus the axis where the batch sits in the
ONNX layout. The batch is the first dimension of every graph input, symbolic or fixed (at 1, as
exporters often leave it); exporters may move it later (``Transpose`` before an LSTM), so each
lowering maps ONNX axes to per-sample axes through that batch axis.

Shape arithmetic (``Shape``, ``Gather``, ``Concat``, ``ConstantOfShape``, ...) runs at compile time
with ``onnx.reference`` on constants; ``Shape`` of a run-time tensor reads a batch of 1. A node whose
inputs are all constant is folded the same way, whatever its op.

A node that cannot be lowered poisons what it produces instead of failing at once: graph outputs
that do not depend on it are still compiled (``outputs=None`` keeps every output the hardware can
compute), and the error is raised only if an output the user wants needs it.

QONNX models (what Brevitas exports) carry their own quantizers, ``Quant`` (``IntQuant``),
``BipolarQuant`` and ``Trunc``: on constants they are evaluated exactly, and weights they put on a
power-of-two grid become fixed-point constants; on run-time tensors they become IR ``Quant`` nodes
(:mod:`.qonnx`).

One module per op family holds its lowerings (:mod:`.layers`, :mod:`.elementwise`, :mod:`.shape`,
:mod:`.qonnx`); :mod:`.loader` has the table from ONNX op to lowering and the loading itself.
"""

from .context import MAX_TENSOR_ELEMENTS, identifier
from .loader import SUPPORTED_OPS, load_onnx
from .qonnx import QONNX_DOMAINS, QONNX_OPS

__all__ = ["MAX_TENSOR_ELEMENTS", "QONNX_DOMAINS", "QONNX_OPS", "SUPPORTED_OPS", "identifier", "load_onnx"]
