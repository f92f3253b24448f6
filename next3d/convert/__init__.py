"""Conversion of published EG3D/Next3D network pickles into next3d checkpoints.

`legacy_pickle` reads the pickles without executing anything from them, `name_map` maps
weights and constructor arguments to the project's names and configuration, `published`
orchestrates; the `next3d convert` command is in `next3d/cli/convert.py`.
"""
