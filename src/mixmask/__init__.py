"""mixmask: mixed-sample data augmentation as a mask and a partner, per sample, on any target.

    out[i] = M[i] * x[i] + (1 - M[i]) * x[j[i]],    lam[i] = mean(M[i])
"""

from mixmask.errors import MixMaskError
from mixmask.functional.losses import mixed_cross_entropy
from mixmask.functional.params import MixParams
from mixmask.transforms import CutMix, FMix, GridMask, MixCollate, MixResult, MixUp, RandomChoice

__version__ = "0.1.0"

__all__ = ["MixUp", "CutMix", "FMix", "GridMask", "RandomChoice", "MixCollate", "MixResult", "MixParams",
           "MixMaskError", "mixed_cross_entropy"]
