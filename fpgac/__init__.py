"""fpgac: compile trained neural networks (ONNX) into bit-exact FPGA hardware and integer C."""

__version__ = "0.1.0"
