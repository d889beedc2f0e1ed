"""Run the Keras layer tests (tests/keras) once per Keras backend, each in a fresh process.

Keras picks its backend once per process (``KERAS_BACKEND`` before the first import), so every
backend gets a pytest process of its own. Also checks that the torch core never imports Keras.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("tensorflow", "jax", "torch")


def test_the_torch_core_never_imports_keras():
    code = ("import sys, mixmask, mixmask.functional, mixmask.transforms, mixmask.bench, mixmask.cli.main; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow', 'jax')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("backend", BACKENDS)
def test_keras_layers_on_backend(backend):
    pytest.importorskip("keras")
    env = dict(os.environ, KERAS_BACKEND=backend, MIXMASK_KERAS_TESTS="1", TF_CPP_MIN_LOG_LEVEL="3",
               CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_backend_optimization_level=0")  # compiles in ~1 s instead of ~6 (threefry)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-header", "-x",
               str(ROOT / "tests" / "keras")]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    tail = (done.stdout + done.stderr)[-6000:]
    assert done.returncode == 0, f"pytest tests/keras on the {backend} backend failed:\n{tail}"
    assert " passed" in done.stdout.splitlines()[-1], tail
