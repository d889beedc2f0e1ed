"""The experiment runner behind ``mixmask train`` and ``mixmask compare``."""

from mixmask.train.config import TrainConfig, load_data
from mixmask.train.runner import train
from mixmask.train.spec import parse_mix

__all__ = ["TrainConfig", "train", "load_data", "parse_mix"]
