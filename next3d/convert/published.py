"""Convert a published EG3D/Next3D network pickle into a next3d checkpoint.

    report = convert_published("next3d_ffhq_512.pkl", "next3d_ffhq_512.n3d")

Reads the pickle with the restricted reader (`legacy_pickle`, nothing executed), maps the
weights by name (`name_map`), rebuilds the configuration from the stored constructor
arguments, checks the weights against the project's networks when they can be built, and
writes `next3d.checkpoint` format (JSON + safetensors).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch

from next3d.checkpoint import (CheckpointError, build_seeded, built_head_topology, discriminator_from_config,
                               generator_factory, load_weights, save_checkpoint)
from next3d.config import ConfigError, DiscriminatorConfig, GeneratorConfig, apply_overrides
from next3d.convert.legacy_pickle import PublishedNetwork, load_published
from next3d.convert.name_map import (ConvertError, MappedWeights, detect_flavour, discriminator_config_from_published,
                                     generator_config_from_published, map_discriminator_weights, map_generator_weights)


@dataclass
class ConversionReport:
    """What a conversion found, kept, dropped and wrote."""

    flavour: str
    config: GeneratorConfig
    d_config: Optional[DiscriminatorConfig]
    groups: Dict[str, int]                                  # group -> number of tensors written
    dropped: Dict[str, str] = field(default_factory=dict)   # published name -> reason
    fresh_modules: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    verified: bool = False
    out: Optional[Path] = None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(what: str, build: Callable[[], torch.nn.Module], mapped: MappedWeights) -> torch.nn.Module:
    module = build()
    try:
        load_weights(module, mapped.tensors, what, allow_missing=mapped.fresh_modules)
    except CheckpointError as exc:
        raise ConvertError(str(exc)) from None
    return module


def convert_published(
    source: Union[str, Path],
    out: Optional[Union[str, Path]],
    *,
    flavour: Optional[str] = None,
    training_nets: bool = False,
    overrides: Sequence[str] = (),
    front_only_blending: bool = True,
    verify: bool = True,
    factory: Optional[Callable[[GeneratorConfig], torch.nn.Module]] = None,
    d_factory: Optional[Callable[[DiscriminatorConfig], torch.nn.Module]] = None,
) -> ConversionReport:
    """Convert `source` (published pickle) to a next3d checkpoint at `out` (None = dry run).

    flavour: 'next3d', 'eg3d' or None (detect). An EG3D generator initialises only the
        static backbone, superresolution and decoder; the rest is left fresh.
    training_nets: also convert G and D (for fine-tuning); default only G_ema.
    overrides: `KEY=VALUE` configuration overrides applied after inference.
    front_only_blending: blend the texture into the front plane only (the evidence for the
        released Next3D model); ignored for EG3D.
    verify: build the project's networks and load the weights strictly; skipped (with a
        note) when the generator class is not importable.
    """
    source = Path(source)
    what = f"network pickle {source}"
    nets = load_published(source, what)
    g_name = next((n for n in ("G_ema", "G") if isinstance(nets.get(n), PublishedNetwork)), None)
    if g_name is None:
        raise ConvertError(f"{what}: holds no generator (G_ema or G); entries: {', '.join(map(str, nets))}")
    G_src: PublishedNetwork = nets[g_name]
    detected = detect_flavour(G_src.state_dict)
    if flavour is None:
        flavour = detected
    elif flavour == "next3d" and detected == "eg3d":
        raise ConvertError(f"{what}: is an EG3D generator (no texture_backbone); convert it as EG3D")
    elif flavour not in ("next3d", "eg3d"):
        raise ValueError(f"flavour must be 'next3d', 'eg3d' or None, got {flavour!r}")
    notes = [f"{what}: {G_src.class_name} ({detected} layout), converting as {flavour}"]

    config, more = generator_config_from_published(G_src, flavour, front_only_blending)
    notes += more
    try:
        config = apply_overrides(config, overrides)
    except ConfigError as exc:
        raise ConvertError(str(exc)) from None

    mapped: Dict[str, MappedWeights] = {"G_ema": map_generator_weights(G_src.state_dict, flavour)}
    if training_nets and isinstance(nets.get("G"), PublishedNetwork) and g_name == "G_ema":
        mapped["G"] = map_generator_weights(nets["G"].state_dict, flavour)
    d_config = None
    if training_nets:
        if isinstance(nets.get("D"), PublishedNetwork):
            d_config = discriminator_config_from_published(nets["D"])
            mapped["D"] = map_discriminator_weights(nets["D"].state_dict)
        else:
            notes.append("no discriminator in the pickle")
    fresh = mapped["G_ema"].fresh_modules
    if fresh:
        notes.append(f"freshly initialised (not in the {flavour} pickle): {', '.join(p.rstrip('.') for p in fresh)}")

    verified = False
    if verify:
        try:
            factory = factory or generator_factory()
        except RuntimeError as exc:
            notes.append(f"not verified against the project's generator: {exc}")
        else:
            for name in ("G_ema", "G"):
                if name in mapped:
                    built = _verify(f"{what} [{name}]", lambda: build_seeded(config, factory, 0), mapped[name])
            head = built_head_topology(built)
            if config.head_topology and head and head != config.head_topology:
                notes.append(f"note: the pickle was trained on head topology {config.head_topology}, but the head "
                             f"model this configuration loads has {head}: set flame_dir (--set flame_dir=FOLDER) "
                             f"to the FLAME folder (DECA UV layout) before using the checkpoint")
            del built
            if "D" in mapped:
                _verify(f"{what} [D]", lambda: build_seeded(d_config, d_factory or discriminator_from_config, 0),
                        mapped["D"])
            verified = True
            notes.append("weights verified against the project's networks (names and shapes)")

    report = ConversionReport(
        flavour=flavour, config=config, d_config=d_config,
        groups={name: len(m.tensors) for name, m in mapped.items()},
        dropped=mapped["G_ema"].dropped, fresh_modules=fresh, notes=notes, verified=verified)
    if out is None:
        return report
    extra = {"converted_from": {
        "file": source.name, "sha256": _sha256(source), "flavour": flavour, "class_name": G_src.class_name,
        "generator_from": g_name, "dropped": sorted(mapped["G_ema"].dropped),
        "training_set_kwargs": nets.get("training_set_kwargs"),
    }}
    report.out = save_checkpoint(
        out, config=config, G_ema=mapped["G_ema"].tensors,
        G=mapped["G"].tensors if "G" in mapped else None,
        D=mapped["D"].tensors if "D" in mapped else None, d_config=d_config,
        fresh_modules={name: fresh for name in ("G_ema", "G") if name in mapped and fresh},
        extra=extra, kind="training" if "D" in mapped else "generator")
    return report
