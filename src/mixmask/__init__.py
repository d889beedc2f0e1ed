"""mixmask: mixed-sample data augmentation as a mask and a partner, per sample, on any target.

    out[i] = M[i] * x[i] + (1 - M[i]) * x[j[i]],    lam[i] = mean(M[i])
"""

from mixmask.errors import MixMaskError
from mixmask.functional.losses import mixed_cross_entropy
from mixmask.functional.params import MixParams
from mixmask.transforms import (ClassMix, CutMix, Cutout, FMix, GridMask, GridMix, MixCollate, MixPolicy, MixResult,
                                MixUp, RandomChoice, ResizeMix, SaliencyMix, SmoothMix)
from mixmask.transforms.manifold import ManifoldMixup

__version__ = "0.1.0"

__all__ = ["MixUp", "CutMix", "FMix", "GridMask", "ResizeMix", "SaliencyMix", "SmoothMix", "GridMix", "Cutout",
           "ClassMix", "RandomChoice", "ManifoldMixup", "MixCollate", "MixPolicy", "MixResult", "MixParams",
           "MixMaskError", "mixed_cross_entropy"]
