"""Builders of published-format (StyleGAN persistence) network pickles for the convert tests.

The pickles are made the way EG3D/Next3D training saves them: every network object is
reduced to `torch_utils.persistence._reconstruct_persistent_obj(meta)` carrying its source
code and its __dict__. The fake `torch_utils.persistence` and `dnnlib.util` modules exist in
sys.modules only while pickling. The embedded source code writes a marker file if it is
ever executed.
"""

from __future__ import annotations

import contextlib
import pickle
import sys
import types

import pytest
import torch


def module_src(marker) -> str:
    return (f"import pathlib\npathlib.Path(r'{marker}').write_text('module_src was executed')\n"
            f"raise RuntimeError('module_src was executed')\n")


def _reconstruct_persistent_obj(meta):  # only pickled by reference, never called
    raise AssertionError("the fake persistence hook must never be called")


class EasyDict(dict):
    pass


@contextlib.contextmanager
def fake_training_modules():
    persistence = types.ModuleType("torch_utils.persistence")
    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    dnnlib, util = types.ModuleType("dnnlib"), types.ModuleType("dnnlib.util")
    EasyDict.__module__ = "dnnlib.util"
    util.EasyDict = EasyDict
    dnnlib.util = util
    saved = {k: sys.modules.get(k) for k in ("torch_utils.persistence", "dnnlib", "dnnlib.util")}
    sys.modules.update({"torch_utils.persistence": persistence, "dnnlib": dnnlib, "dnnlib.util": util})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = value


class Persistent(torch.nn.Module):
    """Mimics a `@persistence.persistent_class` network: reduced to (hook, (meta,))."""

    _orig_class_name = "Persistent"
    _orig_module_src = ""

    def __init__(self, **init_kwargs):
        super().__init__()
        self._init_args = ()
        self._init_kwargs = init_kwargs

    def __reduce__(self):
        fields = list(super().__reduce__())
        meta = dict(type="class", version=6, module_src=self._orig_module_src, class_name=self._orig_class_name,
                    state=fields[2])
        return (_reconstruct_persistent_obj, (meta,))


def persistent(class_name: str, src: str, **init_kwargs) -> Persistent:
    cls = type(class_name, (Persistent,), {"_orig_class_name": class_name, "_orig_module_src": src})
    return cls(**init_kwargs)


def build_network(class_name: str, tensors: dict, src: str, init_kwargs: dict, child_kwargs: dict = None,
                  attributes: dict = None) -> Persistent:
    """A persistent network whose state_dict has exactly `tensors` (names -> tensors).

    Children are persistent too, except `decoder.net`, a torch.nn.Sequential as published.
    Names ending in noise_const/resample_filter/w_avg or topology names become buffers."""
    root = persistent(class_name, src, **init_kwargs)
    child_kwargs = child_kwargs or {}
    for name, tensor in tensors.items():
        parts = name.split(".")
        module, path = root, []
        for part in parts[:-1]:
            path.append(part)
            if part not in module._modules:
                dotted = ".".join(path)
                if dotted == "decoder.net":
                    sub = torch.nn.Sequential()
                elif isinstance(module, torch.nn.Sequential):
                    sub = persistent("FullyConnectedLayer", src)
                else:
                    sub = persistent(part.capitalize(), src, **child_kwargs.get(dotted, {}))
                module.add_module(part, sub)
            module = module._modules[part]
        leaf = parts[-1]
        if leaf in ("noise_const", "resample_filter", "w_avg") or "." not in name:
            module.register_buffer(leaf, tensor.clone())
        else:
            module.register_parameter(leaf, torch.nn.Parameter(tensor.clone(), requires_grad=False))
    for key, value in (attributes or {}).items():
        setattr(root, key, value)
    return root


def tiny_next3d_tensors(eg3d: bool = False) -> dict:
    g = torch.Generator().manual_seed(1)

    def r(*shape):
        return torch.randn(*shape, generator=g)

    t = {}
    if not eg3d:
        t.update({
            "dense_faces": torch.randint(0, 9, (1, 6, 3), generator=g),
            "faces": torch.tensor([[[0, 1, 2], [0, 2, 3]]]),
            "raw_uvcoords": torch.rand(1, 4, 2, generator=g),
            "uvcoords": torch.rand(1, 4, 3, generator=g),
            "uvfaces": torch.tensor([[[0, 1, 2], [0, 2, 3]]]),
            "face_uvcoords": torch.rand(1, 2, 3, 3, generator=g),
            "texture_backbone.mapping.fc0.weight": r(16, 32),
            "texture_backbone.mapping.w_avg": r(16),
            "texture_backbone.synthesis.b4.const": r(8, 4, 4),
            "texture_backbone.synthesis.b4.torgb.weight": r(4, 8, 1, 1),
            "texture_backbone.synthesis.b8.conv0.noise_const": r(8, 8),
            "texture_backbone.synthesis.b8.torgb.weight": r(4, 8, 1, 1),
            "mouth_backbone.synthesis.b4.const": r(8, 4, 4),
            "mouth_backbone.synthesis.encoder.0.fromrgb.weight": r(8, 4, 1, 1),
            "neural_blending.synthesis.b4.const": r(8, 4, 4),
            "neural_blending.synthesis.fusion.0.weight": r(8, 8, 3, 3),
        })
    t.update({
        "backbone.mapping.fc0.weight": r(16, 32),
        "backbone.mapping.w_avg": r(16),
        "backbone.synthesis.b4.const": r(8, 4, 4),
        "backbone.synthesis.b4.torgb.weight": r(12, 8, 1, 1),
        "backbone.synthesis.b16.conv0.noise_strength": torch.tensor(0.5),
        "backbone.synthesis.b16.torgb.weight": r(12, 8, 1, 1),
        "superresolution.block0.conv0.weight": r(8, 4, 3, 3),
        "superresolution.block0.conv0.noise_const": r(16, 16),
        "superresolution.block1.conv0.weight": r(6, 8, 3, 3),
        "superresolution.block1.conv0.noise_const": r(32, 32),
        "decoder.net.0.weight": r(8, 4),
        "decoder.net.0.bias": r(8),
        "decoder.net.2.weight": r(5, 8),
        "decoder.net.2.bias": r(5),
    })
    return t


RENDERING_KWARGS = dict(
    image_resolution=32, disparity_space_sampling=False, clamp_mode="softplus",
    superresolution_module="training.superresolution.SuperresolutionHybrid8XDC", c_gen_conditioning_zero=False,
    gpc_reg_prob=0.5, c_scale=1.0, superresolution_noise_mode="none", density_reg=0.25, density_reg_p_dist=0.004,
    reg_type="l1", decoder_lr_mul=1.0, sr_antialias=True, depth_resolution=12, depth_resolution_importance=4,
    ray_start=2.25, ray_end=3.3, box_warp=1, avg_camera_radius=2.7, avg_camera_pivot=[0, 0, 0.2])


def tiny_generator(src: str, eg3d: bool = False) -> Persistent:
    kwargs = dict(z_dim=16, c_dim=25, w_dim=16, img_resolution=32, img_channels=3, sr_num_fp16_res=0,
                  mapping_kwargs=EasyDict(num_layers=1), rendering_kwargs=RENDERING_KWARGS,
                  sr_kwargs=EasyDict(channel_base=256, channel_max=8), channel_base=256, channel_max=8,
                  fused_modconv_default="inference_only", num_fp16_res=0, conv_clamp=None)
    if not eg3d:
        kwargs["topology_path"] = "data/demo/head_template.obj"
    children = {"mouth_backbone": dict(in_size=8, final_size=4, img_resolution=16, cond_channels=4),
                "neural_blending": dict(in_size=16, final_size=4, img_resolution=16, cond_channels=4)}
    return build_network("TriPlaneGenerator", tiny_next3d_tensors(eg3d), src, kwargs, children,
                         attributes={"neural_rendering_resolution": 16, "orth_scale": torch.tensor([[5.0]])})


def tiny_discriminator(src: str) -> Persistent:
    g = torch.Generator().manual_seed(2)
    tensors = {"resample_filter": torch.ones(4, 4), "b32.fromrgb.weight": torch.randn(4, 6, 1, 1, generator=g),
               "mapping.fc0.weight": torch.randn(8, 8, generator=g), "b4.out.weight": torch.randn(8, 8, generator=g)}
    kwargs = dict(c_dim=25, img_resolution=32, img_channels=3, architecture="resnet", channel_base=128,
                  channel_max=8, num_fp16_res=0, conv_clamp=None, cmap_dim=None, mapping_kwargs=EasyDict(),
                  epilogue_kwargs=EasyDict(mbstd_group_size=2), block_kwargs=EasyDict(freeze_layers=0))
    return build_network("DualDiscriminator", tensors, src, kwargs)


def published_pickle_bytes(marker, eg3d: bool = False, protocol: int = 4, extra: dict = None) -> bytes:
    src = module_src(marker)
    with fake_training_modules():
        data = dict(G=tiny_generator(src, eg3d), D=tiny_discriminator(src), G_ema=tiny_generator(src, eg3d),
                    augment_pipe=None, training_set_kwargs=EasyDict(path="ffhq.zip", resolution=32, use_labels=True),
                    **(extra or {}))
        return pickle.dumps(data, protocol=protocol)


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "EXECUTED"
    yield path
    assert not path.exists(), "code from the pickle was executed"


@pytest.fixture
def pub():
    """The builders above, for test modules (conftest modules are not importable by name)."""
    return types.SimpleNamespace(
        module_src=module_src, published_pickle_bytes=published_pickle_bytes, fake_training_modules=fake_training_modules,
        tiny_generator=tiny_generator, tiny_discriminator=tiny_discriminator, tiny_next3d_tensors=tiny_next3d_tensors,
        build_network=build_network, rendering_kwargs=RENDERING_KWARGS,
        EasyDict=EasyDict)
