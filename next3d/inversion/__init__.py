"""Photo -> animatable avatar: latent inversion, GAR-style face refinement, pivotal tuning.

Read top to bottom, one module per stage:

    target    stage 1: detect, align and fit a photo (or take a synthetic-set item as it is)
    latent    stage 2: W / W+ inversion (ST-LPIPS + face-region L2 + noise regularisation)
    refine    stage 3: expression, jaw, eyes and camera refined through the generator
    pivotal   stage 4: pivotal tuning with the locality regulariser
    writer    stage 5: avatar.n3d, reconstruction.png, novel views, expressions, metrics.json

`pipeline.invert` runs stages 2-4; `losses` holds the image loss and the shared render call,
`views` the novel-view cameras and expression edits, `evaluate` the synthetic-set measurement
(true renders from other cameras). The command is `next3d invert` (next3d/cli/invert.py).
"""

from next3d.inversion.latent import LatentConfig, invert_latent
from next3d.inversion.losses import ImageLoss, LossWeights, psnr, render
from next3d.inversion.pipeline import InversionConfig, InversionResult, StageState, invert
from next3d.inversion.pivotal import PivotalConfig, pivotal_tuning
from next3d.inversion.refine import RefineConfig, refine_face
from next3d.inversion.target import (InversionInputError, InversionTarget, parse_item_spec, target_from_dataset,
                                     target_from_photo)
from next3d.inversion.writer import output_names, write_outputs

__all__ = ["LatentConfig", "invert_latent", "ImageLoss", "LossWeights", "psnr", "render", "InversionConfig",
           "InversionResult", "StageState", "invert", "PivotalConfig", "pivotal_tuning", "RefineConfig",
           "refine_face", "InversionInputError", "InversionTarget", "parse_item_spec", "target_from_dataset",
           "target_from_photo", "output_names", "write_outputs"]
