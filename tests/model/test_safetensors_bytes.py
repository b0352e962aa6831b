"""Equal weights are written as equal bytes, so model versions (file digests) are reproducible."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from safetensors import safe_open

from pipeline.model.sentiment import Head

WRITE = """
import sys, numpy as np
from pathlib import Path
from pipeline.model.sentiment import Head
head = Head(np.arange(6, dtype=np.float32).reshape(3, 2), np.ones(3))
head.save(Path(sys.argv[1]), {"temperature": "0.5", "evidence_weight": "0.25"})
"""


def test_a_head_saved_in_two_processes_is_the_same_file(tmp_path: Path) -> None:
    # safetensors orders metadata by a hash seeded per process: several runs, so chance cannot pass this
    paths = [tmp_path / f"head{i}.safetensors" for i in range(4)]
    for path in paths:
        subprocess.run([sys.executable, "-c", WRITE, str(path)], check=True)
    assert len({path.read_bytes() for path in paths}) == 1
    head = Head.load(paths[0])
    assert np.array_equal(head.weight, np.arange(6).reshape(3, 2))
    with safe_open(str(paths[0]), framework="np") as f:
        assert f.metadata() == {
            "labels": "negative,neutral,positive",
            "temperature": "0.5",
            "evidence_weight": "0.25",
        }
