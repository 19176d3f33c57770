"""Model importers: ONNX to the IR."""

from fpgac.frontend.onnx import MAX_TENSOR_ELEMENTS, QONNX_DOMAINS, QONNX_OPS, SUPPORTED_OPS, identifier, load_onnx

__all__ = ["MAX_TENSOR_ELEMENTS", "QONNX_DOMAINS", "QONNX_OPS", "SUPPORTED_OPS", "identifier", "load_onnx"]
