"""The two Keras examples run end to end for one epoch (on TensorFlow: the backend they were written for)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from kerashelp import needs

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # AutoGraph reads the source of the functions tf.data maps
    spec.loader.exec_module(module)
    return module


@needs("tensorflow")
def test_keras_cutmix_example_trains_with_and_without_cutmix():
    result = load("keras_cutmix").main(["--epochs", "1", "--verbose", "0"])
    assert result["backend"] == "tensorflow"
    assert result["first_batch_mixed_rows"] > 0  # the pipeline mixed the labels
    for name in ("cutmix", "baseline"):
        assert 0.0 <= result[name]["test_accuracy"] <= 1.0
        assert np.isfinite(result[name]["train_loss"]).all()


@needs("tensorflow")
# Keras' LearningRateScheduler reads the learning-rate variable with np.array(), which numpy 2 warns about
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
def test_keras_kfold_example_runs_its_folds():
    module = load("keras_kfold_pipeline")
    result = module.main(["--folds", "2", "--epochs", "1", "--methods", "mixup,cutmix,gridmask", "--verbose", "0"])
    assert result["backend"] == "tensorflow" and len(result["fold_accuracies"]) == 2
    assert all(0.0 <= a <= 1.0 for a in result["fold_accuracies"])
    rates = [module.learning_rate(e, 30) for e in range(30)]
    assert rates[0] < rates[3] < rates[4] and rates[4] == max(rates) and rates[-1] == min(rates[4:])
