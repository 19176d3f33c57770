"""Model importers: ONNX to the IR."""

from fpgac.frontend.onnx import MAX_TENSOR_ELEMENTS, SUPPORTED_OPS, load_onnx

__all__ = ["MAX_TENSOR_ELEMENTS", "SUPPORTED_OPS", "load_onnx"]
