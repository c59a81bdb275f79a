"""`bench/run_all.py`: which benchmarks it finds, the commands it runs, and how it reads their output."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def run_all() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run_all", ROOT / "bench" / "run_all.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_benchmark_but_itself_is_found(run_all: ModuleType) -> None:
    names = run_all.benchmarks()
    on_disk = {p.stem for p in (ROOT / "bench").glob("*.py")} - {"run_all"}
    assert set(names) == on_disk
    assert names[:4] == ["store_upsert", "sandbox_serve", "pull", "analytics"]


def test_quick_commands_use_each_benchmarks_own_size_flags(run_all: ModuleType) -> None:
    quick = run_all.command_for("store_upsert", True)
    assert quick[0] == sys.executable
    assert run_all.shown(quick) == "python bench/store_upsert.py --tasks 2000 --changes 20000"
    assert run_all.shown(run_all.command_for("pull", False)) == "python bench/pull.py"
    for name in run_all.benchmarks():
        script = (ROOT / "bench" / f"{name}.py").read_text()
        for flag in run_all.QUICK.get(name, [])[::2]:
            assert f'"{flag}"' in script, f"bench/{name}.py has no {flag} option"


def test_output_is_the_json_document_printed(run_all: ModuleType) -> None:
    assert run_all.parse_output('{"a": 1}\n') == ({"a": 1}, None)
    assert run_all.parse_output('{"url": "x"}\nnoise\n{"b": [1, 2]}\n') == ({"b": [1, 2]}, None)
    assert run_all.parse_output("") == (None, "printed nothing on stdout")
    assert run_all.parse_output("no json here") == (None, "stdout holds no JSON document")
