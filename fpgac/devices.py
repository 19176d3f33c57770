"""The FPGA devices fpgac plans for and places on: their names and capacities.

The open toolchain here (yosys ``synth_ecp5``, nextpnr-ecp5) targets Lattice ECP5, so its parts
are the ones known: a design's folding (``--device`` of the amaranth target) and the report's
place and route both read this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UsageError

__all__ = ["DEFAULT_DEVICE", "ECP5_CAPACITY", "ECP5_DEVICES", "Device", "device"]

#: ECP5 devices nextpnr-ecp5 places on: --device -> its size flag
ECP5_DEVICES = {"LFE5U-12F": "--12k", "LFE5U-25F": "--25k", "LFE5U-45F": "--45k", "LFE5U-85F": "--85k",
                "LFE5UM-25F": "--um-25k", "LFE5UM-45F": "--um-45k", "LFE5UM-85F": "--um-85k",
                "LFE5UM5G-25F": "--um5g-25k", "LFE5UM5G-45F": "--um5g-45k", "LFE5UM5G-85F": "--um5g-85k"}
#: the capacity of each ECP5 device (LUT4, FF, MULT18X18D, DP16KD), from Lattice's data sheet
ECP5_CAPACITY = {"12": (12096, 12096, 28, 56), "25": (24288, 24288, 28, 56), "45": (43848, 43848, 72, 108),
                 "85": (83640, 83640, 156, 208)}

DEFAULT_DEVICE = "LFE5U-85F"


@dataclass(frozen=True)
class Device:
    """A part's name and capacity: LUT4s, flip-flops, DSP multipliers (MULT18X18D), block RAMs (DP16KD)."""

    name: str
    luts: int
    ffs: int
    dsps: int
    brams: int


def device(name: str | None) -> Device:
    """The device of that name (default LFE5U-85F); a UsageError lists the known ones."""
    name = DEFAULT_DEVICE if name is None else str(name)
    key = name.upper()
    if key not in ECP5_DEVICES:
        raise UsageError(f"unknown device {name!r}: the known ones are the ECP5 parts {', '.join(ECP5_DEVICES)}")
    size = ECP5_DEVICES[key].rsplit("-", 1)[-1].rstrip("k")
    return Device(key, *ECP5_CAPACITY[size])
