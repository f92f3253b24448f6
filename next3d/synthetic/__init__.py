"""The synthetic-heads data set: photographic-looking renders of a FLAME head with full ground truth.

Every image is one independent draw from the distributions in `distributions.SynthDistributions`
(identity, appearance, hair, expression, jaw, gaze, eyelids, neck pose, camera, lighting,
background), rendered with the project's rasteriser under an EG3D camera label so that the head
sits where a Next3D generator renders it for that label.

Pieces: `distributions` (the one config of every sampling distribution, and `sample_scene`),
`head` (per-model assets: face classes, UV bake maps, anchors), `appearance` (procedural UV
albedo), `hair` (a hair volume mesh), `body` (neck, shoulders, clothing), `mouth` (teeth,
tongue, cavity), `lighting` (spherical harmonics + key light), `background`, `scene`
(assembling the meshes of one item) and `render` (`render_item`, `SyntheticItem`).
"""

from next3d.synthetic.distributions import SynthDistributions  # noqa: F401
