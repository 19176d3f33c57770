"""The pytest plugin (entry point ``pytest11``: installing fpgac is enough).

Two ways to put fpgac into a regression suite:

- the ``fpgac_compile`` fixture: ``design = fpgac_compile("model.onnx", target="cpu", bits=8)``
  compiles into the test's temporary folder; ``design.verify()`` builds and runs the testbench and
  returns the mismatching bits, latency, interval and the distances to the float network;
- manifests, ``*.fpgac.toml`` files collected as tests: one test item per target, each compiling
  the model with the manifest's options, verifying it bit-exact, checking its tolerances, and
  comparing its outputs with the stored baseline (``<name>.baseline/<target>.npz`` beside the
  manifest): a new compile whose golden outputs differ by one bit from the baseline on the
  baseline's inputs fails with the vectors that moved. ``--fpgac-update-baseline`` writes the
  baselines instead (a missing baseline fails and says so). ``--fpgac-scheduler tcp://HOST:PORT``
  runs each item's compile and verify on a Dask cluster (the paths must be visible to the workers).

A manifest::

    model = "mlp.onnx"              # relative to the manifest
    targets = ["cpu", "amaranth"]
    vectors = 100                   # test vectors per design (default 100)

    [options]                       # as fpgac compile's: bits, precision, prune, calibration,
    bits = 8                        # input_range, table_size, accuracy_budget
    input_range = [-1, 1]

    [target_options.amaranth]       # per target: reuse, clock_period, io, part, axi
    clock_period = 8.0

    [tolerances]                    # each optional
    agreement = 0.95                # at least this argmax agreement with the float network
    max_error = 0.05                # at most this largest error against float
    latency = 40                    # at most this many cycles (targets that measure it)
"""

from __future__ import annotations

import json
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

if TYPE_CHECKING:  # fpgac itself is imported when a test uses it, not when pytest starts
    from ..api import CompiledModel
    from ..backends.verification import Report

__all__ = ["Design", "ManifestError", "Verified", "run_manifest_target"]

MANIFEST_KEYS = {"model", "targets", "vectors", "options", "target_options", "tolerances"}
OPTION_KEYS = {"bits", "precision", "prune", "calibration", "input_range", "table_size", "accuracy_budget"}
TARGET_OPTION_KEYS = {"reuse", "clock_period", "io", "part", "axi"}
TOLERANCE_KEYS = {"agreement", "max_error", "latency"}


class ManifestError(Exception):
    """A manifest with an unknown key or a bad value."""


@dataclass
class Verified:
    """What ``Design.verify()`` found."""

    mismatched_bits: int
    vectors: int
    latency: int | None
    interval: float | None
    agreement: float | None  # argmax agreement with the float network
    max_error: float  # largest error against the float network
    report: Report

    @property
    def ok(self) -> bool:
        return self.report.ok


@dataclass
class Design:
    """A design the fixture compiled: its folder, and ``verify()``."""

    out: Path
    target: str
    compiled: CompiledModel

    def verify(self, vectors: int | None = None, **options: Any) -> Verified:
        from .. import api

        report = api.verify(self.out, vectors, **options)
        extra = report.extra
        return Verified(report.mismatched_bits, report.vectors, extra.get("latency_cycles"),
                        extra.get("interval_cycles"), report.float.agreement, report.float.max_error, report)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fpgac", "fpgac regression manifests (*.fpgac.toml)")
    group.addoption("--fpgac-update-baseline", action="store_true",
                    help="write each manifest item's golden outputs as its new baseline instead of comparing")
    group.addoption("--fpgac-scheduler", metavar="tcp://HOST:PORT",
                    help="run manifest items' compile and verify on this Dask scheduler")


@pytest.fixture()
def fpgac_compile(tmp_path: Path):
    """``fpgac_compile(model, target="cpu", vectors=100, **options)``: compile into the test's
    temporary folder and return a :class:`Design`. ``options`` are ``api.compile``'s (bits,
    prune, calibration, input_range, ...) and the target's (reuse, clock_period, ...)."""
    count = 0

    def compile_(model: str | Path, target: str = "cpu", vectors: int = 100, **options: Any) -> Design:
        from .. import api

        nonlocal count
        count += 1
        quant = {k: v for k, v in options.items() if k in OPTION_KEYS}
        target_opts = {k: v for k, v in options.items() if k not in OPTION_KEYS}
        if "input_range" in quant:
            quant["input_range"] = tuple(quant["input_range"])
        compiled = api.compile(model, **quant)
        out = compiled.write(tmp_path / f"design{count}", target, vectors=vectors, **target_opts)
        return Design(out, target, compiled)

    return compile_


def pytest_collect_file(parent: pytest.Collector, file_path: Path):
    if file_path.name.endswith(".fpgac.toml"):
        return ManifestFile.from_parent(parent, path=file_path)
    return None


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest, checked: every key known, every value of the right kind."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ManifestError(f"{path}: not a readable TOML file ({err})") from None

    def unknown(keys: set[str], allowed: set[str], where: str) -> None:
        extra = sorted(set(keys) - allowed)
        if extra:
            raise ManifestError(f"{path}: unknown key {extra[0]!r} in {where} (known: {', '.join(sorted(allowed))})")

    unknown(set(data), MANIFEST_KEYS, "the manifest")
    if not isinstance(data.get("model"), str):
        raise ManifestError(f"{path}: 'model' must be the model's path (a string)")
    targets = data.get("targets", ["cpu"])
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise ManifestError(f"{path}: 'targets' must be a list of target names")
    from ..backends import TARGETS

    for t in targets:
        if t not in TARGETS:
            raise ManifestError(f"{path}: unknown target {t!r} (known: {', '.join(sorted(TARGETS))})")
    vectors = data.get("vectors", 100)
    if not isinstance(vectors, int) or vectors < 1:
        raise ManifestError(f"{path}: 'vectors' must be a positive integer, not {vectors!r}")
    unknown(set(data.get("options", {})), OPTION_KEYS, "[options]")
    for target, opts in data.get("target_options", {}).items():
        if target not in targets:
            raise ManifestError(f"{path}: [target_options.{target}] names a target not in 'targets'")
        unknown(set(opts), TARGET_OPTION_KEYS, f"[target_options.{target}]")
    tolerances = data.get("tolerances", {})
    unknown(set(tolerances), TOLERANCE_KEYS, "[tolerances]")
    for key, value in tolerances.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise ManifestError(f"{path}: tolerance {key!r} must be a non-negative number, not {value!r}")
    model = (path.parent / data["model"]).resolve()
    if not model.is_file():
        raise ManifestError(f"{path}: model {data['model']!r}: no such file")
    options = dict(data.get("options", {}))
    if "calibration" in options:
        options["calibration"] = str((path.parent / options["calibration"]).resolve())
    if "input_range" in options:
        options["input_range"] = tuple(options["input_range"])
    return {"model": str(model), "targets": targets, "vectors": vectors, "options": options,
            "target_options": data.get("target_options", {}), "tolerances": tolerances}


def run_manifest_target(manifest: dict[str, Any], target: str, out: str) -> dict[str, Any]:
    """Compile and verify one target of a manifest into ``out``; what the item checks (runs
    locally or on a Dask worker)."""
    from .. import api

    compiled = api.compile(manifest["model"], **manifest["options"])
    design = compiled.write(out, target, vectors=manifest["vectors"], **manifest["target_options"].get(target, {}))
    report = api.verify(design)
    return {"report": report.to_json(), "lines": report.lines(), "ok": report.ok}


class ManifestFile(pytest.File):
    def collect(self):
        try:
            manifest = read_manifest(Path(self.path))
        except ManifestError as err:
            raise ManifestCollectError(str(err)) from None
        for target in manifest["targets"]:
            yield ManifestItem.from_parent(self, name=target, manifest=manifest, target=target)

    def repr_failure(self, excinfo):  # one clear line, no traceback, for a bad manifest
        if isinstance(excinfo.value, ManifestCollectError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class ManifestCollectError(Exception):
    pass


class RegressionFailure(Exception):
    """What a manifest item found wrong, said in its own words."""


class ManifestItem(pytest.Item):
    def __init__(self, *, manifest: dict[str, Any], target: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.manifest = manifest
        self.target = target

    @property
    def baseline(self) -> Path:
        stem = Path(self.path).name.removesuffix(".fpgac.toml")
        return Path(self.path).parent / f"{stem}.baseline" / f"{self.target}.npz"

    def runtest(self) -> None:
        with tempfile.TemporaryDirectory(prefix=f"fpgac-{self.target}-") as tmp:
            self._run(Path(tmp) / "design")

    def _run(self, out: Path) -> None:
        scheduler = self.config.getoption("fpgac_scheduler")
        if scheduler:
            from distributed import Client

            try:
                client = Client(scheduler, timeout="10s")
            except (OSError, TimeoutError) as err:
                raise RegressionFailure(f"--fpgac-scheduler {scheduler}: cannot reach it ({err})") from None
            with client:
                result = client.submit(run_manifest_target, self.manifest, self.target, str(out), pure=False).result()
        else:
            result = run_manifest_target(self.manifest, self.target, str(out))
        problems = []
        report = result["report"]
        if not result["ok"]:
            problems.append(f"not bit-exact with the golden model: {report['mismatching_bits']} bits differ in "
                            f"{report['mismatching_vectors']} of {report['vectors']} vectors")
        tol = self.manifest["tolerances"]
        agreement, max_error = report["float"]["agreement"], report["float"]["max_error"]
        latency = report["measurements"].get("latency_cycles")
        if "agreement" in tol and (agreement is None or agreement < tol["agreement"]):
            problems.append(f"argmax agreement with float {agreement} is below the tolerance {tol['agreement']}")
        if "max_error" in tol and max_error > tol["max_error"]:
            problems.append(f"largest error against float {max_error:.4g} is above the tolerance {tol['max_error']}")
        if "latency" in tol and latency is not None and latency > tol["latency"]:
            problems.append(f"latency {latency} cycles is above the tolerance {tol['latency']}")
        if self.config.getoption("fpgac_update_baseline"):
            self._write_baseline(out)
        else:
            problems += self._compare_baseline(out)
        if problems:
            raise RegressionFailure("\n".join(problems))

    def _write_baseline(self, out: Path) -> None:
        from ..backends.common import VECTORS, load_vectors, read_manifest

        vectors = load_vectors(out / VECTORS)
        ports = read_manifest(out)["outputs"]
        arrays = {f"in{i}": a for i, a in enumerate(vectors.inputs)}
        arrays.update({f"golden{i}": g for i, g in enumerate(vectors.golden)})
        arrays["types"] = np.array(json.dumps({p.name: str(p.type) for p in ports}))
        self.baseline.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(self.baseline, **arrays)

    def _compare_baseline(self, out: Path) -> list[str]:
        if not self.baseline.is_file():
            return [f"no baseline {self.baseline}: run pytest with --fpgac-update-baseline to store one"]
        from .. import api
        from ..backends.common import read_manifest
        from ..ir import parse_type
        from ..sim import run_fixed
        from .baseline import compare_output

        with np.load(self.baseline) as data:
            inputs = [data[k] for k in sorted((k for k in data.files if k.startswith("in")), key=lambda k: int(k[2:]))]
            golden = [data[f"golden{i}"] for i in range(sum(k.startswith("golden") for k in data.files))]
            types = json.loads(str(data["types"]))
        ports = read_manifest(out)["outputs"]
        now = run_fixed(api.load_design(out), inputs, mantissas=True)
        problems = []
        for port, new, old in zip(ports, now, golden):
            old_type = parse_type(types.get(port.name, str(port.type)))
            rows, note, examples = compare_output(port.type, old_type, new, old)
            if note:  # a changed type fails whatever the values: the baseline is another design
                problems.append(f"output {port.name}: {note} since the baseline")
            elif rows:
                problems.append("\n".join([f"output {port.name}: {len(rows)} of {len(old)} vectors moved from the "
                                            "baseline"] + [f"  {line}" for line in examples]))
        return problems

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, RegressionFailure):
            return f"{self.path.name}::{self.target}:\n{excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, 0, f"fpgac manifest {self.path.name} [{self.target}]"
