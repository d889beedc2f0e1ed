"""Pure functions: parameter samplers, mask samplers and the kernels that apply a draw."""

from mixmask.functional.kernels import (PairTargets, mix_class_targets, mix_dense_targets, mix_inputs,
                                        pair_class_targets, pair_dense_targets)
from mixmask.functional.losses import mixed_cross_entropy
from mixmask.functional.masks import (cutmix_boxes, cutmix_masks, fmix_grey_images, fmix_masks, gridmask_masks,
                                      mixup_masks)
from mixmask.functional.params import METHODS, MixParams
from mixmask.functional.sampling import PAIRINGS, sample_lam, sample_partners

__all__ = [
    "METHODS", "PAIRINGS", "MixParams", "sample_lam", "sample_partners", "mixup_masks", "cutmix_boxes",
    "cutmix_masks", "fmix_grey_images", "fmix_masks", "gridmask_masks", "mix_inputs", "mix_class_targets",
    "mix_dense_targets", "pair_class_targets", "pair_dense_targets", "PairTargets", "mixed_cross_entropy",
]
