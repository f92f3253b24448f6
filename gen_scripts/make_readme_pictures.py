"""Make the README's pictures of a network (default: the shipped model, `--network builtin`).

    python gen_scripts/make_readme_pictures.py                      # -> docs/builtin_*.png, docs/builtin_orbit.mp4
    python gen_scripts/make_readme_pictures.py --network run/snapshot.n3d --out /tmp/pictures --frames 24

Writes into --out: builtin_grid.png (one row per --seeds, --views views from yaw −0.6..+0.6),
builtin_expressions.png (rows jaw 0 → 0.3 rad, smile, blink for --sweep-seed),
builtin_mesh.png (for --mesh-seeds: the images and, below them, the `generate --shapes` mesh
from the same views) and builtin_orbit.mp4 (the orbit of `next3d video` for --orbit-seeds). Thin: parses arguments and
calls `next3d.pretrained.pictures`.
"""

import argparse
import sys
from pathlib import Path

MAX_VIDEO_BYTES = 1 << 20


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="builtin", help="builtin, a next3d checkpoint or random:PRESET")
    parser.add_argument("--out", default="docs", help="output folder (default: docs)")
    parser.add_argument("--seeds", default="0-3", help="seeds of the grid rows (default: 0-3)")
    parser.add_argument("--views", type=int, default=5, help="views per grid row (default: 5)")
    parser.add_argument("--sweep-seed", type=int, default=0, help="identity of the expression sweep (default: 0)")
    parser.add_argument("--steps", type=int, default=5, help="columns of the expression sweep (default: 5)")
    parser.add_argument("--mesh-seeds", default="0,1", help="seeds of the mesh picture (default: 0,1)")
    parser.add_argument("--orbit-seeds", default="0,1", help="seeds side by side in the orbit video (default: 0,1)")
    parser.add_argument("--frames", type=int, default=48, help="frames of the orbit video (default: 48)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    args = parser.parse_args(argv)

    from next3d.generate import load_generator, parse_seeds
    from next3d.pretrained.pictures import expression_sweep, mesh_views, multiview_grid, orbit_video, save_png

    try:
        G = load_generator(args.network, device=args.device)
        seeds, orbit_seeds, mesh_seeds = (parse_seeds(x) for x in (args.seeds, args.orbit_seeds, args.mesh_seeds))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    grid = save_png(multiview_grid(G, seeds, views=args.views), out / "builtin_grid.png")
    print(f"wrote {grid} ({grid.stat().st_size // 1024} KiB)")
    sweep = save_png(expression_sweep(G, seed=args.sweep_seed, steps=args.steps), out / "builtin_expressions.png")
    print(f"wrote {sweep} ({sweep.stat().st_size // 1024} KiB)")
    shapes = save_png(mesh_views(G, mesh_seeds, views=args.views), out / "builtin_mesh.png")
    print(f"wrote {shapes} ({shapes.stat().st_size // 1024} KiB)")
    video = orbit_video(G, orbit_seeds, out / "builtin_orbit.mp4", frames=args.frames)
    size = video.stat().st_size
    print(f"wrote {video} ({size // 1024} KiB)")
    if size > MAX_VIDEO_BYTES:
        print(f"note: {video} is over 1 MiB; use fewer --frames or --orbit-seeds for the README", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
