from next3d.cli.bench import bench

bench.main(prog_name="python -m next3d.bench")
