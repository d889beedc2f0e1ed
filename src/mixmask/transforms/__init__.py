"""Mixing transforms for batches: a policy over mask samplers, and the DataLoader collate wrapper."""

from mixmask.transforms.collate import MixCollate
from mixmask.transforms.methods import ClassMix, Cutout, GridMix, ResizeMix, SaliencyMix, SmoothMix
from mixmask.transforms.mix import CutMix, FMix, GridMask, MixPolicy, MixResult, MixUp, RandomChoice
from mixmask.transforms.samplers import (ClassMixSampler, CutMixSampler, CutoutSampler, FMixSampler,
                                         GridMaskSampler, GridMixSampler, MaskDraw, MaskSampler, MixUpSampler,
                                         ResizeMixSampler, SaliencyMixSampler, SamplerContext, SmoothMixSampler)

__all__ = ["MixUp", "CutMix", "FMix", "GridMask", "ResizeMix", "SaliencyMix", "SmoothMix", "GridMix", "Cutout",
           "ClassMix", "RandomChoice", "MixPolicy", "MixResult", "MixCollate", "MaskSampler", "SamplerContext",
           "MaskDraw", "MixUpSampler", "CutMixSampler", "FMixSampler", "GridMaskSampler", "ResizeMixSampler",
           "SaliencyMixSampler", "SmoothMixSampler", "GridMixSampler", "CutoutSampler", "ClassMixSampler"]
