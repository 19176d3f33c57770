"""The PyTorch-exported conformance models that ship with the onnx package, and which are in scope.

Shared by the frontend's conformance test and the backends' (``tests/backends``).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

DATA = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data"
MODELS = sorted(p for sub in ("pytorch-converted", "pytorch-operator") for p in (DATA / sub).iterdir() if p.is_dir())

_3D = "3D convolution and pooling: fpgac compiles 1D and 2D"
OUT_OF_SCOPE: dict[str, str] = {
    "test_AvgPool3d": _3D,
    "test_AvgPool3d_stride": _3D,
    "test_AvgPool3d_stride1_pad0_gpu_input": _3D,
    "test_Conv3d": _3D,
    "test_Conv3d_dilated": _3D,
    "test_Conv3d_dilated_strided": _3D,
    "test_Conv3d_groups": _3D,
    "test_Conv3d_no_bias": _3D,
    "test_Conv3d_stride": _3D,
    "test_Conv3d_stride_padding": _3D,
    "test_MaxPool3d": _3D,
    "test_MaxPool3d_stride": _3D,
    "test_MaxPool3d_stride_padding": _3D,
    "test_ConvTranspose2d": "ConvTranspose (upsampling) is not a layer fpgac builds",
    "test_ConvTranspose2d_no_bias": "ConvTranspose (upsampling) is not a layer fpgac builds",
    "test_operator_convtranspose": "ConvTranspose (upsampling) is not a layer fpgac builds",
    "test_Embedding": "integer (token index) inputs: fpgac compiles float inputs",
    "test_Embedding_sparse": "integer (token index) inputs: fpgac compiles float inputs",
    "test_operator_non_float_params": "integer inputs: fpgac compiles float inputs",
    "test_PoissonNLLLLoss_no_reduce": "a loss function (Exp on a run-time tensor)",
    "test_operator_exp": "Exp on a run-time tensor (exp exists only inside Softmax)",
    "test_operator_pow": "Pow between run-time tensors",
    "test_operator_sqrt": "Sqrt on a run-time tensor",
    "test_ReflectionPad2d": "reflect padding: fpgac pads with a constant",
    "test_ReplicationPad2d": "edge padding: fpgac pads with a constant",
    "test_operator_pad": "reflect padding: fpgac pads with a constant",
    "test_operator_reduced_mean": "ReduceMean over arbitrary axes (GlobalAveragePool is supported)",
    "test_operator_reduced_mean_keepdim": "ReduceMean over arbitrary axes (GlobalAveragePool is supported)",
    "test_operator_reduced_sum": "ReduceSum over arbitrary axes",
    "test_operator_reduced_sum_keepdim": "ReduceSum over arbitrary axes",
    "test_operator_repeat": "Tile of a run-time tensor",
    "test_operator_repeat_dim_overflow": "Tile of a run-time tensor",
    "test_operator_symbolic_override": "InstanceNormalization (statistics computed at run time)",
    "test_operator_addmm": "matrix product of two run-time inputs: weights must be constants",
    "test_operator_mm": "matrix product of two run-time inputs: weights must be constants",
    "test_operator_add_broadcast": "two inputs with different batch sizes (the second is broadcast over the batch)",
    "test_operator_add_size1_broadcast": "two inputs with different batch sizes (the second is broadcast over the batch)",
    "test_operator_add_size1_right_broadcast": "two inputs with different batch sizes (the second is broadcast over the batch)",
    "test_operator_add_size1_singleton_broadcast": "two inputs with different batch sizes (the second is broadcast over the batch)",
    "test_operator_params": "a parameter that differs per batch entry",
    "test_operator_chunk": "splits the batch axis itself",
    "test_operator_index": "indexes into the batch axis",
}


def tensors(folder: str, kind: str) -> list[np.ndarray]:
    return [numpy_helper.to_array(onnx.load_tensor(f)) for f in sorted(glob.glob(f"{folder}/{kind}_*.pb"))]


def data_sets(model: Path) -> list[tuple[list[np.ndarray], list[np.ndarray]]]:
    folders = sorted(glob.glob(str(model / "test_data_set_*")))
    return [(tensors(f, "input"), tensors(f, "output")) for f in folders]
