"""The amaranth target: the quantized IR wired from fpgac.hdl components, Verilog, a cocotb testbench.

``simulate`` runs the testbench (``testbench.py``, copied into each design) on Verilator or Icarus.
"""
