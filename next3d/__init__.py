"""next3d: 3D-aware, animatable head avatars (Next3D) on the FLAME head model."""

__version__ = "0.1.0"
