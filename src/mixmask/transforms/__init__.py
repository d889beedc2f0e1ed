"""Mixing transforms for batches: a policy over mask samplers, and the DataLoader collate wrapper."""

from mixmask.transforms.collate import MixCollate
from mixmask.transforms.mix import CutMix, FMix, GridMask, MixPolicy, MixResult, MixUp, RandomChoice
from mixmask.transforms.samplers import (CutMixSampler, FMixSampler, GridMaskSampler, MaskDraw, MaskSampler,
                                         MixUpSampler, SamplerContext)

__all__ = ["MixUp", "CutMix", "FMix", "GridMask", "RandomChoice", "MixPolicy", "MixResult", "MixCollate",
           "MaskSampler", "SamplerContext", "MaskDraw", "MixUpSampler", "CutMixSampler", "FMixSampler",
           "GridMaskSampler"]
