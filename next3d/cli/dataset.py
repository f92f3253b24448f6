"""`next3d dataset check|show|stats` (and `synth`, `from-photos` from their own modules).

Thin: parse, load, call `training.dataset*`. The format: docs/dataset_format.md.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path

import click

# Subcommands written in their own modules, imported on use; missing modules are left out.
_LAZY = {
    "synth": ("next3d.cli.dataset_synth", "synth"),
    "from-photos": ("next3d.cli.dataset_from_photos", "from_photos"),
}


def _broken(name: str, exc: Exception) -> click.Command:
    @click.command(name=name, help=f"(unavailable: {type(exc).__name__}: {exc})",
                   context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def cmd():
        raise click.ClickException(f"dataset {name}: the command failed to load ({type(exc).__name__}: {exc})")

    return cmd


class _DatasetGroup(click.Group):
    def list_commands(self, ctx):
        lazy = [n for n, (mod, _) in _LAZY.items() if importlib.util.find_spec(mod) is not None]
        return sorted(set(super().list_commands(ctx)) | set(lazy))

    def get_command(self, ctx, name):
        cmd = super().get_command(ctx, name)
        if cmd is not None or name not in _LAZY:
            return cmd
        module, attr = _LAZY[name]
        if importlib.util.find_spec(module) is None:
            return None
        try:
            return getattr(importlib.import_module(module), attr)
        except Exception as exc:  # one broken optional piece must not take the group down
            return _broken(name, exc)


@click.group(cls=_DatasetGroup)
def dataset():
    """Data sets: make (synth, from-photos), check, show and plot them (format: docs/dataset_format.md)."""


def _path_arg(fn):
    return click.argument("path", type=click.Path(exists=True, path_type=Path), metavar="DIR|ZIP")(fn)


def _out_png(path: Path) -> Path:
    if path.suffix.lower() != ".png":
        raise click.ClickException(f"--out {path}: expected a .png path")
    if not path.parent.is_dir():
        raise click.ClickException(f"--out {path}: folder {path.parent} does not exist")
    return path


@dataset.command()
@_path_arg
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check(path, as_json):
    """Counts, splits, resolution, label statistics and every problem found (exit code 1 when any)."""
    from tqdm import tqdm

    from training.dataset_report import check_dataset

    report = check_dataset(path, progress=lambda it, **kw: tqdm(it, file=sys.stderr, leave=False,
                                                                disable=as_json, **kw))
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else report.to_text())
    if not report.ok:
        sys.exit(1)


def _open_dataset(path, split, **kwargs):
    from training.dataset import DatasetError, ImageDataset

    try:
        return ImageDataset(path, split=None if split == "all" else split, **kwargs)
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from None


@dataset.command()
@_path_arg
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output .png of the contact sheet.")
@click.option("--count", type=click.IntRange(1, 400), default=16, show_default=True, help="Items on the sheet.")
@click.option("--split", type=click.Choice(["all", "train", "test"]), default="all", show_default=True)
@click.option("--tile", type=click.IntRange(32, 1024), default=256, show_default=True, help="Pixels per item.")
@click.option("--flip", is_flag=True, help="Show the horizontally flipped items (checks the mirrored labels).")
@click.option("--flame-dir", type=click.Path(file_okay=False), default=None,
              help="FLAME folder of a set made with real FLAME (default: $NEXT3D_FLAME_DIR).")
def show(path, out, count, split, tile, flip, flame_dir):
    """A contact sheet: images with the 68 landmarks and the projected FLAME mesh outline."""
    from training.dataset import DatasetError
    from training.dataset_plots import contact_sheet, evenly_spaced, save_png

    out = _out_png(out)
    layer, head = None, _load_head(path, flame_dir)
    ds = _open_dataset(path, split, xflip=flip, head_data=head, flame_dir=flame_dir)
    if ds.has_flame_params:
        from next3d.flame import FLAME

        if ds.head_topology and _topology(head) != ds.head_topology:
            raise click.ClickException(f"{path}: the set's head topology {ds.head_topology} differs from the loaded "
                                       f"head model's {_topology(head)}; pass its --flame-dir")
        if ds.head_model == "builtin" and ds.head_version and _version(head) != ds.head_version:
            click.echo(f"warning: the set was made with built-in head {ds.head_version}, this next3d has "
                       f"{_version(head)}; the drawn meshes may not match the images", err=True)
        layer = FLAME(head)
    n = len(ds) // (2 if flip else 1)
    indices = evenly_spaced(count, n)
    if flip:
        indices = [i + n for i in indices]
    try:
        sheet = contact_sheet(ds, indices, flame_layer=layer, faces=ds.mesh_faces, tile=tile)
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from None
    save_png(sheet, out)
    click.echo(f"wrote {out} ({len(indices)} of {len(ds)} items, {sheet.size[0]}x{sheet.size[1]})")


def _load_head(path, flame_dir):
    """The head model of a next3d-format set: the built-in head or the FLAME folder."""
    from next3d.flame import FlameFilesError, load_flame_model
    from training.dataset_schema import LABELS_FILE, parse_labels
    from training.dataset_storage import Storage

    storage = Storage(path)
    if not storage.exists(LABELS_FILE):
        return load_flame_model(flame_dir) if flame_dir else None
    try:
        head_model = parse_labels(storage.read(LABELS_FILE), storage.where(LABELS_FILE)).head_model
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        if head_model == "flame":
            from next3d.flame.files import resolve_flame_dir

            if resolve_flame_dir(flame_dir) is None:
                raise click.ClickException(f"{path}: the set was made with real FLAME; pass --flame-dir (or set "
                                           f"$NEXT3D_FLAME_DIR) to draw its meshes")
            return load_flame_model(flame_dir)
        return load_flame_model(None)
    except FlameFilesError as exc:
        raise click.ClickException(str(exc)) from None


def _version(head) -> str:
    from training.dataset_schema import head_identity

    return head_identity(head)["head_version"]


def _topology(head) -> str:
    from training.dataset_schema import head_identity

    return head_identity(head)["head_topology"]


@dataset.command()
@_path_arg
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output .png of the histograms.")
def stats(path, out):
    """Pose (yaw, pitch) and expression/jaw histograms as a PNG plot."""
    from training.dataset import DatasetError
    from training.dataset_plots import save_png, stats_plot
    from training.dataset_report import label_arrays

    out = _out_png(out)
    try:
        arrays = label_arrays(path)
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from None
    save_png(stats_plot(arrays, title=f"{path}: {len(arrays['yaw'])} items"), out)
    click.echo(f"wrote {out} ({len(arrays['yaw'])} items; yaw {arrays['yaw'].min():+.1f} .. "
               f"{arrays['yaw'].max():+.1f} deg, pitch {arrays['pitch'].min():+.1f} .. {arrays['pitch'].max():+.1f} deg)")
