"""The pytest plugin (issue 19), run inside pytest with pytester: manifests collected as test
items (one passing, one failing on a tolerance), baselines written with --fpgac-update-baseline
and then checked (a corrupted baseline fails with the vector that moved), a bad manifest reported
in one line, and the fpgac_compile fixture."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import numpy as np

pytest_plugins = ["pytester"]

MLP = Path(__file__).resolve().parents[2] / "examples" / "mlp.onnx"

GOOD = f'''
model = "{MLP}"
targets = ["cpu"]
vectors = 20

[options]
bits = 8
input_range = [-1, 1]

[tolerances]
agreement = 0.5
'''

BAD = GOOD.replace("agreement = 0.5", "max_error = 0.0")  # the 8-bit design is not the float network


def test_the_plugin_is_installed_as_an_entry_point() -> None:
    assert [e.value for e in entry_points(group="pytest11") if e.name == "fpgac"] == ["fpgac.regress.pytest_plugin"]


def test_manifests_as_test_items(pytester) -> None:
    pytester.makefile(".fpgac.toml", good=GOOD, bad=BAD)
    result = pytester.runpytest("--fpgac-update-baseline", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*bad.fpgac.toml::cpu:*", "*largest error against float * is above the tolerance 0.0*"])
    baseline = pytester.path / "good.baseline" / "cpu.npz"
    assert baseline.is_file()

    result = pytester.runpytest("-p", "no:cacheprovider")  # against the stored baseline
    result.assert_outcomes(passed=1, failed=1)

    with np.load(baseline) as data:  # one bit of one stored output changed: that vector moved
        arrays = {k: data[k] for k in data.files}
    arrays["golden0"][3].flat[1] ^= 1
    np.savez_compressed(baseline, **arrays)
    result = pytester.runpytest("-p", "no:cacheprovider", "good.fpgac.toml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*output y: 1 of 20 vectors moved from the baseline*", "*vector 3: *"])


def test_a_missing_baseline_says_how_to_make_one(pytester) -> None:
    pytester.makefile(".fpgac.toml", good=GOOD)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no baseline *good.baseline/cpu.npz: run pytest with --fpgac-update-baseline*"])


def test_a_bad_manifest_is_one_clear_line(pytester) -> None:
    pytester.makefile(".fpgac.toml", typo=GOOD.replace("vectors = 20", "vector = 20"))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*typo.fpgac.toml: unknown key 'vector' in the manifest (known: model, *"])
    assert "Traceback" not in result.stdout.str()


def test_the_compile_fixture(pytester) -> None:
    pytester.makepyfile(f'''
        def test_mlp(fpgac_compile):
            design = fpgac_compile({str(MLP)!r}, target="cpu", bits=8, input_range=(-1, 1), vectors=15)
            result = design.verify()
            assert result.ok and result.mismatched_bits == 0 and result.vectors == 15
            assert 0 < result.agreement <= 1 and result.max_error > 0
    ''')
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_manifest_items_on_a_dask_scheduler(pytester) -> None:
    """--fpgac-scheduler: the item's compile and verify run on a Dask worker process."""
    from distributed import Client, LocalCluster

    pytester.makefile(".fpgac.toml", good=GOOD)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        # a fresh process, as a CI job runs it: the plugin comes from its entry point there
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--fpgac-update-baseline",
                                               "--fpgac-scheduler", cluster.scheduler_address)
        result.assert_outcomes(passed=1)
        ran = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
        assert "run_manifest_target" in ran  # the work went to the cluster


def test_an_unreachable_scheduler_is_one_line(pytester) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pytester.makefile(".fpgac.toml", good=GOOD)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--fpgac-scheduler", f"tcp://127.0.0.1:{port}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*--fpgac-scheduler tcp://127.0.0.1:{port}: cannot reach it*"])
