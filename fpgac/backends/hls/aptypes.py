"""Where the Xilinx ``ap_fixed``/``ap_int`` headers come from.

Vitis HLS is not installable here, but the hls4ml package ships the same ``ap_types`` headers;
g++ C-simulation and the bit-exactness tests compile against them. The package is located
without importing it, because importing hls4ml takes seconds.
"""

from __future__ import annotations

import importlib.util
import pathlib

from fpgac.errors import UsageError

__all__ = ["ap_types_include"]

_RELATIVE = pathlib.Path("templates", "vivado", "ap_types")


def ap_types_include() -> pathlib.Path:
    """The ``ap_types`` folder of the installed hls4ml, to pass to ``g++ -isystem``."""
    spec = importlib.util.find_spec("hls4ml")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        folder = pathlib.Path(root) / _RELATIVE
        if (folder / "ap_fixed.h").is_file():
            return folder
    raise UsageError(
        "the ap_fixed headers come from the hls4ml package, which is not installed: pip install hls4ml"
    )
