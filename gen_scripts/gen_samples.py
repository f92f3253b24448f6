"""Generate images, depth maps and meshes for a list of seeds (EG3D/Next3D `gen_samples.py`).

A thin wrapper around `next3d generate` (same options; `--outdir` works as in EG3D):

    python gen_scripts/gen_samples.py --network random:tiny --seeds 0-3 --outdir out --shapes

The work is done by `next3d.generate`; run with --help for every option.
"""

from next3d.cli.errors import run_standalone
from next3d.cli.generate import generate

if __name__ == "__main__":
    run_standalone(generate, "gen_samples.py")
