"""FLAME head model: files, the FLAME layer, and the built-in procedural head.

    from next3d.flame import load_flame_model, FLAME
    flame = FLAME(load_flame_model())          # None -> $NEXT3D_FLAME_DIR -> built-in head
    out = flame(shape=beta, expression=psi, jaw=jaw_pose)
    out.vertices (B, V, 3), out.landmarks (B, 68, 3), out.joints (B, 5, 3)

Conventions (FLAME space): metres, y up, z towards the viewer, x to the subject's left.
"""

from next3d.flame.files import ENV_FLAME_DIR, FlameFilesError, FlameModelData, load_flame_model
from next3d.flame.layer import FLAME, FlameOutput

__all__ = ["FLAME", "FlameOutput", "FlameModelData", "FlameFilesError", "load_flame_model", "ENV_FLAME_DIR"]
