"""Mixing transforms for batches, and their DataLoader collate wrapper."""

from mixmask.transforms.collate import MixCollate
from mixmask.transforms.mix import CutMix, FMix, GridMask, MixResult, MixTransform, MixUp, RandomChoice

__all__ = ["MixUp", "CutMix", "FMix", "GridMask", "RandomChoice", "MixTransform", "MixResult", "MixCollate"]
