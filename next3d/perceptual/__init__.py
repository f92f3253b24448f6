"""Perceptual networks of the project's own: shift-tolerant VGG-16 / AlexNet trunks and the
ST-LPIPS distance, loading the weights shipped in the `stlpips-pytorch` pip package (never
its code), and an Inception-v3 for standard FID that loads a user-given state_dict file.

    from next3d.perceptual import STLPIPS, VGGFeatures
    d = STLPIPS("vgg")(a, b)          # (B,), inputs (B, 3, H, W) in [-1, 1]
    feats = VGGFeatures()(x)          # five feature maps relu1_2 .. relu5_3
"""

from next3d.perceptual.stlpips import STLPIPS, PerceptualFeatures, ScalingLayer, VGGFeatures, unit_normalize
from next3d.perceptual.weights import PerceptualError, load_state_dict, weights_path

__all__ = ["STLPIPS", "PerceptualFeatures", "ScalingLayer", "VGGFeatures", "unit_normalize", "PerceptualError",
           "load_state_dict", "weights_path"]
