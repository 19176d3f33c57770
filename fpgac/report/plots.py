"""The report's figures (matplotlib, PNG): weights and activations against their types' ranges
per layer (the view of hls4ml's profiling, with the chosen types drawn in), resources per layer,
and the error against float per output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["draw"]


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        from ..errors import UsageError

        raise UsageError("the report's figures need matplotlib: pip install 'fpgac[report]'") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _log2_range(t) -> tuple[float, float]:
    """The magnitudes a type represents, as log2: from its LSB to its largest value."""
    return float(np.log2(t.lsb)), float(np.log2(max(abs(t.max_value), abs(t.min_value), t.lsb)))


def _profile(ax, names: list[str], samples: list[np.ndarray], types: list, what: str) -> None:
    from matplotlib.patches import Rectangle

    pos = np.arange(len(names))
    for k, t in enumerate(types):
        if t is not None:
            lo, hi = _log2_range(t)
            ax.add_patch(Rectangle((lo, k - 0.4), hi - lo, 0.8, color="tab:gray", alpha=0.25, lw=0))
    data = [np.log2(s[s > 0]) if np.any(s > 0) else np.array([np.nan]) for s in samples]
    ax.boxplot(data, positions=pos, orientation="horizontal", widths=0.5, showfliers=True, flierprops={"markersize": 2})
    ax.set_yticks(pos, names, fontsize=7)
    ax.set_xlabel(f"log2 |{what}| (grey: what the chosen type represents, LSB to largest)")
    ax.invert_yaxis()


def draw(folder: Path, report: dict[str, Any], graph, activations: dict[str, np.ndarray]) -> dict[str, str]:
    """Write the figures into ``folder``; their file names by kind."""
    plt = _pyplot()
    files: dict[str, str] = {}
    weighted = [n for n in graph.nodes if n.op.value in ("Dense", "Conv") and n.inputs[1] is not None
                and n.inputs[1].is_const]
    if weighted:
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(weighted) + 1.4))
        _profile(ax, [n.name for n in weighted],
                 [np.abs(n.inputs[1].data.astype(np.float64) * n.inputs[1].type.dtype.lsb).ravel() for n in weighted],
                 [n.inputs[1].type.dtype for n in weighted], "weight")
        ax.set_title("weights per layer")
        fig.tight_layout()
        fig.savefig(folder / "weights.png", dpi=100)
        plt.close(fig)
        files["weights"] = "weights.png"
    acts = [(n, activations[n.output.name]) for n in graph.nodes if n.output.name in activations]
    if acts:
        fig, ax = plt.subplots(figsize=(8, 0.35 * len(acts) + 1.4))
        _profile(ax, [n.name for n, _ in acts], [np.abs(a).ravel() for _, a in acts],
                 [getattr(n.output.type, "dtype", None) for n, _ in acts], "activation")
        ax.set_title("activations per layer (golden model on the report's inputs)")
        fig.tight_layout()
        fig.savefig(folder / "activations.png", dpi=100)
        plt.close(fig)
        files["activations"] = "activations.png"
    rows = [r for r in report["layers"] if r.get("hardware") and "luts" in r["hardware"]]
    if rows:
        fig, ax = plt.subplots(figsize=(8, 0.4 * len(rows) + 1.4))
        pos = np.arange(len(rows))
        ax.barh(pos - 0.2, [r["hardware"]["luts"] for r in rows], 0.4, label="LUTs")
        ax.barh(pos + 0.2, [r["hardware"]["ffs"] for r in rows], 0.4, label="flip-flops")
        ax.set_yticks(pos, [r["name"] for r in rows], fontsize=7)
        ax.invert_yaxis()
        ax.legend()
        ax.set_title("resources per layer (" + report["sources"].get("resources", "").split(":")[0] + ")")
        fig.tight_layout()
        fig.savefig(folder / "resources.png", dpi=100)
        plt.close(fig)
        files["resources"] = "resources.png"
    hists = report["accuracy"]["histograms"]
    if hists:
        fig, axes = plt.subplots(1, len(hists), figsize=(4 * len(hists) + 1, 3), squeeze=False)
        for ax, (name, h) in zip(axes[0], hists.items()):
            edges = np.asarray(h["edges"])
            ax.bar(edges[:-1], h["counts"], width=np.diff(edges), align="edge", color="tab:blue")
            ax.set_yscale("log")
            ax.set_title(f"{name}: golden - float")
            ax.set_xlabel(f"error (LSB {h['lsb']:g})")
        fig.tight_layout()
        fig.savefig(folder / "errors.png", dpi=100)
        plt.close(fig)
        files["errors"] = "errors.png"
    return files
