"""``fpgac sweep``: design points (bits x pruning x reuse) compiled, verified and measured on Dask.

Every point is an independent task: compile the model with the point's options, write the design
for the target, run its testbench (``verify``: bit-exact against the golden model) and measure
it: distance to the float network, accuracy against labels when the data has them, latency and
interval in cycles, and the arithmetic it keeps (non-zero weights, weight bits and
bit-operations: for every kept multiply, weight bits times input bits, counted from the graph;
divided by the measured interval, an estimate of the arithmetic hardware, not a synthesis). The model and
data travel with the task as bytes, so workers on other machines need no shared files.

The engine is ``dask.distributed``: a ``LocalCluster`` sized to the machine by default, or an
existing scheduler (``--scheduler tcp://HOST:PORT``) whose workers may be on many machines.
Each finished point is saved at once in ``SWEEP_DIR/points/<key>.json``, the key a content hash
of the model, the data, the point's options and the fpgac version: a rerun computes only the
points it has not got, an interrupted sweep keeps what finished, and a point that fails is
recorded with its error while the sweep goes on (a task whose worker died is run again by the
scheduler; an exception is retried once).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__, api, backends
from ..errors import FpgacError, UsageError
from ..ir import Op
from ..layers import layer_table

__all__ = ["Point", "SweepResult", "pareto_front", "plan", "run_point", "sweep"]

#: the figures of a point that do not depend on where or when it ran (compared across runs)
MEASURED = ("status", "mismatching_bits", "vectors", "agreement_vs_float", "max_error_vs_float",
            "label_accuracy", "latency_cycles", "interval_cycles", "nonzero_weights", "weight_bits",
            "bit_operations", "bit_operations_per_cycle", "luts", "ffs", "dsps", "brams", "error")
CSV_COLUMNS = ("key", "target", "bits", "prune", "reuse", *MEASURED, "seconds", "worker")


@dataclass(frozen=True)
class Point:
    """One design point: the options that vary across a sweep."""

    target: str
    bits: int
    prune: str | None
    reuse: int

    @property
    def label(self) -> str:
        return f"bits={self.bits} prune={self.prune or 'none'} reuse={self.reuse}"

    def write_options(self) -> dict[str, Any]:
        return {"reuse": self.reuse} if self.reuse != 1 else {}


def plan(target: str, bits: Sequence[int], prunes: Sequence[str | None], reuses: Sequence[int]) -> list[Point]:
    """Every combination, checked before any work: targets, widths, reuse factors and whether the
    target takes a reuse factor at all."""
    if target not in backends.TARGETS:
        raise UsageError(f"--target {target}: not one of {', '.join(sorted(backends.TARGETS))}")
    for b in bits:
        if not 2 <= b <= 32:
            raise UsageError(f"--bits {b}: a width must be 2 to 32")
    for r in reuses:
        if r < 1:
            raise UsageError(f"--reuse {r}: a reuse factor must be at least 1")
    points = [Point(target, b, p, r) for b, p, r in itertools.product(bits, prunes, reuses)]
    for p in points:
        if p.write_options():
            backends.resolve_options(target, p.write_options())  # a target without --reuse says so
    return points


def _digest(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def point_key(point: Point, model_digest: str, data_digest: str | None, common: dict[str, Any]) -> str:
    """The content hash a point is cached under."""
    text = json.dumps({"point": asdict(point), "model": model_digest, "data": data_digest, "common": common,
                       "fpgac": __version__}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _bit_operations(graph) -> int:
    """Weight bits times input bits, summed over every kept multiply of a fully unrolled design."""
    return sum(row.bit_operations for row in layer_table(graph))


def run_point(point: Point, model: bytes, model_name: str, data: bytes | None, common: dict[str, Any],
              data_name: str = "data.npz") -> dict[str, Any]:
    """Compile, write, verify and measure one point (runs on a Dask worker, or anywhere).

    Errors of the point itself (an option the model cannot take, a design that does not verify)
    come back as a failed result; anything else raises, for the scheduler to retry."""
    start = time.perf_counter()
    result: dict[str, Any] = {**asdict(point), "worker": f"{socket.gethostname()}:{os.getpid()}"}
    _test_hook(point)
    with tempfile.TemporaryDirectory(prefix="fpgac-sweep-") as tmp:
        model_path = Path(tmp) / model_name
        model_path.write_bytes(model)
        data_path = None
        if data is not None:
            data_path = Path(tmp) / data_name
            data_path.write_bytes(data)
        try:
            compiled = api.compile(model_path, calibration=data_path, input_range=common.get("input_range"),
                                   bits=point.bits, prune=point.prune)
            out = compiled.write(Path(tmp) / "design", point.target, vectors=common["vectors"],
                                 **point.write_options())
            report = api.verify(out)
        except FpgacError as err:
            error = str(err).replace(f"{tmp}{os.sep}", "")  # the user's file names, not the task's copies
            return {**result, "status": "failed", "error": error, "seconds": round(time.perf_counter() - start, 2)}
        labels = api.read_labels(data_path) if data_path is not None else None
        accuracy = None
        if labels is not None:
            x = api.read_input(data_path, compiled.float_graph)
            accuracy = (compiled.label_accuracy(x, labels) or {}).get("golden")
        weights = [v for n in compiled.graph.nodes for v in n.inputs[1:2]
                   if n.op in (Op.DENSE, Op.CONV, Op.LSTM, Op.GRU) and v is not None and v.is_const]
        extra = report.extra
        bit_operations = _bit_operations(compiled.graph)
        result.update({
            "status": "ok" if report.ok else "mismatch",
            "mismatching_bits": report.mismatched_bits,
            "vectors": report.vectors,
            "agreement_vs_float": report.float.agreement,
            "max_error_vs_float": report.float.max_error,
            "label_accuracy": accuracy,
            "latency_cycles": extra.get("latency_cycles", extra.get("latency")),
            "interval_cycles": extra.get("interval_cycles", extra.get("interval")),
            "nonzero_weights": int(sum(np.count_nonzero(v.data) for v in weights)),
            "weight_bits": int(sum(np.count_nonzero(v.data) * v.type.dtype.width for v in weights)),
            "bit_operations": bit_operations,
            # the arithmetic hardware, estimated: a design that takes a vector every I cycles shares it over I
            "bit_operations_per_cycle": round(bit_operations / max(1.0, float(extra.get("interval_cycles") or 1.0)), 1),
            "error": None,
        })
        if common.get("synth") and point.target in ("amaranth", "xilinx"):
            # the report's figures: yosys on the design (amaranth: measured; xilinx: fpgac's own RTL, estimated)
            from ..report.collect import collect

            try:
                figures = collect(out, pnr=False, jobs=1)
            except FpgacError as err:
                return {**result, "status": "failed", "error": f"synthesis: {err}",
                        "seconds": round(time.perf_counter() - start, 2)}
            total = figures["hardware"]["total"]
            result.update({k: total.get(k) for k in ("luts", "ffs", "dsps", "brams")})
            result["resources_source"] = figures["sources"]["resources"]
        result["seconds"] = round(time.perf_counter() - start, 2)
    return result


def _test_hook(point: Point) -> None:
    """For the tests only: ``FPGAC_SWEEP_KILL=BITS:MARKER`` kills the worker process running the
    point of that width the first time (when ``MARKER`` does not exist yet), as a crash would."""
    spec = os.environ.get("FPGAC_SWEEP_KILL")
    if not spec:
        return
    bits, marker = spec.split(":", 1)
    if int(bits) == point.bits and not Path(marker).exists():
        Path(marker).write_text("killed once")
        os._exit(1)


@dataclass
class SweepResult:
    """Every point's result, in the order of the sweep, and what this run computed."""

    results: list[dict[str, Any]]
    computed: int
    cached: int
    front: list[int]  # indices into results: the Pareto front

    def measured(self) -> list[dict[str, Any]]:
        """The figures that do not depend on where or when the points ran."""
        return [{k: r.get(k) for k in ("target", "bits", "prune", "reuse", *MEASURED)} for r in self.results]


def _hardware(r: dict[str, Any]) -> float:
    """A point's hardware: its LUTs when synthesized (``--synth``), else bit-operations per cycle."""
    return float(r["luts"] if r.get("luts") is not None else r.get("bit_operations_per_cycle") or 0)


def pareto_front(results: Sequence[dict[str, Any]]) -> list[int]:
    """The points (indices) no other verified point beats in accuracy, hardware and latency at
    once: accuracy against labels when known, else argmax agreement with float; hardware as the
    LUTs yosys counted (``--synth``), else bit-operations per cycle (a design that takes a vector
    every I cycles shares its arithmetic over I: an estimate from the graph and the measured
    interval); latency in cycles."""
    def objectives(r: dict[str, Any]) -> tuple[float, float, float]:
        acc = r.get("label_accuracy")
        acc = r.get("agreement_vs_float") if acc is None else acc
        lat = r.get("latency_cycles")
        return (-(acc or 0.0), _hardware(r), float(lat) if lat is not None else 0.0)

    ok = [i for i, r in enumerate(results) if r.get("status") == "ok"]
    front = []
    for i in ok:
        a = objectives(results[i])
        dominated = any(all(x <= y for x, y in zip(objectives(results[j]), a)) and objectives(results[j]) != a
                        for j in ok if j != i)
        if not dominated:
            front.append(i)
    return front


def _save_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n")
    tmp.replace(path)


def _client(scheduler: str | None, workers: int):
    """A Dask client: on the given scheduler, or on a LocalCluster of ``workers`` processes."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as err:
            raise UsageError(f"--scheduler {scheduler}: cannot reach it ({err})") from None
    with dask.config.set({"distributed.scheduler.allowed-failures": 1, "distributed.worker.daemon": False}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
    return Client(cluster)


def sweep(
    model: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    target: str,
    bits: Sequence[int],
    prunes: Sequence[str | None] = (None,),
    reuses: Sequence[int] = (1,),
    data: str | os.PathLike | None = None,
    input_range: tuple[float, float] | None = None,
    vectors: int = 200,
    synth: bool = False,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: Callable[[int, int, int, int], None] | None = None,
) -> SweepResult:
    """Run every point not already in ``out_dir``; write ``results.json``, ``results.csv``,
    ``pareto.png``. ``progress(done, running, failed, total)`` follows the points."""
    for module in ("distributed", "matplotlib"):
        try:
            __import__(module)
        except ImportError:
            raise UsageError(f"fpgac sweep needs {'dask.distributed' if module == 'distributed' else module}: "
                             "pip install 'fpgac[sweep]'") from None
    points = plan(target, bits, prunes, reuses)
    model = Path(model)
    if not model.is_file():
        raise UsageError(f"{model}: no such file")
    if data is not None and not Path(data).is_file():
        raise UsageError(f"--data {data}: no such file")
    if vectors < 1:
        raise UsageError(f"--vectors must be at least 1, not {vectors}")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1, not {workers}")
    model_bytes = model.read_bytes()
    data_bytes = Path(data).read_bytes() if data is not None else None
    common = {"vectors": vectors, "input_range": list(input_range) if input_range else None, "synth": synth}
    if synth and target == "cpu":
        raise UsageError("--synth applies to --target amaranth or xilinx, not cpu")
    graph = api.load(model)  # a model that cannot load fails here, once, not in every task
    if data is not None:
        api.read_input(data, graph)  # so does data of the wrong shape
    out = Path(out_dir)
    keys = [point_key(p, _digest(model_bytes), _digest(data_bytes), common) for p in points]
    done: dict[str, dict[str, Any]] = {}
    for key in keys:
        path = out / "points" / f"{key}.json"
        if path.is_file():
            try:
                stored = json.loads(path.read_text())
            except ValueError:
                continue
            if stored.get("status") in ("ok", "mismatch"):
                done[key] = stored  # a failed point is tried again
    todo = [(k, p) for k, p in zip(keys, points) if k not in done]
    cached, failed = len(done), 0
    if progress:
        progress(len(done), 0, 0, len(points))
    if todo:
        from distributed import as_completed

        client = _client(scheduler, workers or min(len(todo), os.cpu_count() or 1))
        try:
            # the bytes travel inside each task (not scattered once): a worker that dies takes no
            # other task's inputs with it
            model_f, data_f = model_bytes, data_bytes
            data_name = Path(data).name if data is not None else "data.npz"
            futures = {client.submit(run_point, p, model_f, model.name, data_f, common, data_name,
                                     key=f"fpgac-point-{k}", retries=1, pure=False): (k, p) for k, p in todo}
            running = len(futures)
            for future in as_completed(futures):
                k, p = futures[future]
                try:
                    result = future.result()
                except Exception as err:  # the worker died, or a bug: recorded, the sweep goes on
                    result = {**asdict(p), "status": "failed", "error": f"{type(err).__name__}: {err}"}
                result["key"] = k
                _save_json(out / "points" / f"{k}.json", result)
                done[k] = result
                running -= 1
                failed += result["status"] == "failed"
                if progress:
                    progress(len(done), running, failed, len(points))
        finally:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
    results = [{**done[k], "key": k} for k in keys]
    front = pareto_front(results)
    for i, r in enumerate(results):
        r["pareto"] = i in front
    _save_json(out / "results.json", {"model": model.name, "target": target, "fpgac": __version__,
                                      "points": results, "pareto": [results[i]["key"] for i in front]})
    _write_csv(out / "results.csv", results)
    _plot(out / "pareto.png", results, front)
    return SweepResult(results, len(todo), cached, front)


def _write_csv(path: Path, results: Sequence[dict[str, Any]]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=[*CSV_COLUMNS, "pareto"], extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in results:
        writer.writerow({k: "" if r.get(k) is None else r.get(k) for k in (*CSV_COLUMNS, "pareto")})
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(text.getvalue())
    tmp.replace(path)


def _plot(path: Path, results: Sequence[dict[str, Any]], front: Sequence[int]) -> None:
    """Accuracy against bit-operations, the latency as colour, the Pareto front drawn through."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in results if r.get("status") == "ok"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if ok:
        labels = any(r.get("label_accuracy") is not None for r in ok)
        acc = [r.get("label_accuracy") if labels else r.get("agreement_vs_float") for r in ok]
        synthesized = all(r.get("luts") is not None for r in ok)
        ops = [_hardware(r) for r in ok]
        lat = [r.get("latency_cycles") if r.get("latency_cycles") is not None else 0 for r in ok]
        points = ax.scatter(ops, acc, c=lat, cmap="viridis", s=40, zorder=2)
        fig.colorbar(points, ax=ax, label="latency (cycles, measured in simulation)")
        chosen = sorted((results[i] for i in front), key=_hardware)
        ax.plot([_hardware(r) for r in chosen],
                [r.get("label_accuracy") if labels else r.get("agreement_vs_float") for r in chosen],
                color="tab:red", lw=1, zorder=1, label="Pareto front")
        for r, x, y in zip(ok, ops, acc):
            ax.annotate(f"{r['bits']}b {r.get('prune') or ''} r{r['reuse']}".strip(), (x, y), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
        ax.set_ylabel("accuracy vs labels" if labels else "argmax agreement with the float network")
        ax.legend(loc="lower right")
        ax.set_xlabel("LUTs (yosys)" if synthesized else
                      "bit-operations per cycle (weight x input bits per kept multiply / interval; estimated)")
    ax.set_title("fpgac sweep")
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
