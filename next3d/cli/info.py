"""`next3d info`: print what this installation can do."""

from __future__ import annotations

import json

import click

from next3d.info import gather


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the facts as JSON.")
@click.option("--no-build", is_flag=True, help="Do not build compiled ops; only report the environment.")
def info(as_json: bool, no_build: bool):
    """Show torch version, devices, and which compiled ops built or fell back (and why)."""
    facts = gather(build=not no_build)
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    click.echo(f"next3d {facts['next3d']}  (python {facts['python']}, torch {facts['torch']}, "
               f"CUDA build {facts['cuda_build'] or 'none'})")
    click.echo("devices: " + ", ".join(facts["devices"]))
    click.echo(f"head model: {facts['head_model']}")
    click.echo(f"ops mode: {facts['ops_mode']}  (NEXT3D_OPS=ref|auto)")
    click.echo(f"build cache: {facts['build_cache']}  (NEXT3D_BUILD_CACHE)")
    click.echo(f"CPU capability: {facts['cpu_capability']}; fast paths: {facts['compute_policy']}")
    click.echo(f"keeps freed memory: {facts['keeps_freed_memory']}")
    if facts["ops"]:
        click.echo("compiled ops:")
        for op, per_dev in sorted(facts["ops"].items()):
            for dev, what in per_dev.items():
                click.echo(f"  {op:<22} {dev:<5} {what}")
    for line in facts["unavailable_modules"]:
        click.echo(f"not importable: {line}")
