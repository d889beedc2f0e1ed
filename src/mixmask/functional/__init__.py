"""Pure functions: parameter samplers, mask samplers and the kernels that apply a draw."""

from mixmask.functional.kernels import (PairTargets, mix_class_targets, mix_dense_targets, mix_inputs,
                                        pair_class_targets, pair_dense_targets)
from mixmask.functional.losses import mixed_cross_entropy
from mixmask.functional.masks import (centred_boxes, classmix_masks, cutmix_boxes, cutmix_masks, cutout_masks,
                                      fmix_grey_images, fmix_masks, gridmask_masks, gridmix_masks, mixup_masks,
                                      resizemix_boxes, saliencymix_boxes, smoothmix_masks)
from mixmask.functional.params import FILL_METHODS, METHODS, MixParams
from mixmask.functional.saliency import saliency_peaks, spectral_saliency
from mixmask.functional.sampling import PAIRINGS, sample_lam, sample_partners
from mixmask.functional.warps import NoiseWarp, ResizeWarp, resize_into_boxes

__all__ = [
    "METHODS", "FILL_METHODS", "PAIRINGS", "MixParams", "sample_lam", "sample_partners", "mixup_masks",
    "cutmix_boxes", "cutmix_masks", "fmix_grey_images", "fmix_masks", "gridmask_masks", "centred_boxes",
    "resizemix_boxes", "saliencymix_boxes", "smoothmix_masks", "gridmix_masks", "cutout_masks", "classmix_masks",
    "spectral_saliency", "saliency_peaks", "resize_into_boxes", "ResizeWarp", "NoiseWarp", "mix_inputs",
    "mix_class_targets", "mix_dense_targets", "pair_class_targets", "pair_dense_targets", "PairTargets",
    "mixed_cross_entropy",
]
