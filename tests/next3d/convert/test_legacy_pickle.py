import builtins
import io
import os
import pickle
import subprocess

import pytest
import torch

from next3d.convert.legacy_pickle import (PersistentRecord, _tensor_from_storage, load_published,
                                          read_network_pickle, state_dict_of)
from next3d.safe_pickle import UnsafePickleError


def test_module_src_payload_is_real(tmp_path, pub):
    """The embedded source would create the marker if executed: the tests below can fail."""
    marker = tmp_path / "payload"
    with pytest.raises(RuntimeError, match="module_src was executed"):
        exec(pub.module_src(marker), {})
    assert marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_reads_networks_without_executing(pub, marker, protocol):
    data = pub.published_pickle_bytes(marker, protocol=protocol)
    nets = load_published(data)
    assert set(nets) == {"G", "D", "G_ema", "augment_pipe", "training_set_kwargs"}
    assert nets["augment_pipe"] is None
    assert nets["training_set_kwargs"] == {"path": "ffhq.zip", "resolution": 32, "use_labels": True}
    G = nets["G_ema"]
    assert G.class_name == "TriPlaneGenerator" and G.record.version == 6
    assert G.record.module_src_chars == len(pub.module_src(marker))
    assert G.init_kwargs["mapping_kwargs"] == {"num_layers": 1}
    assert G.init_kwargs["rendering_kwargs"]["depth_resolution"] == 12
    assert G.child_kwargs("mouth_backbone")["in_size"] == 8
    assert G.attribute("neural_rendering_resolution") == 16
    # Same names, order and values as torch's own state_dict of the original objects.
    with pub.fake_training_modules():
        reference = pub.tiny_generator(pub.module_src(marker)).state_dict()
        d_reference = pub.tiny_discriminator(pub.module_src(marker)).state_dict()
    assert list(G.state_dict) == list(reference)
    for key, value in reference.items():
        assert G.state_dict[key].dtype == value.dtype and torch.equal(G.state_dict[key], value), key
    assert list(nets["D"].state_dict) == list(d_reference)
    assert nets["G"].state_dict["decoder.net.2.bias"].shape == (5,)


def test_records_are_inert_data(pub, marker):
    top = read_network_pickle(pub.published_pickle_bytes(marker))
    rec = top["G"]
    assert isinstance(rec, PersistentRecord) and not isinstance(rec, torch.nn.Module)
    net = rec.state["_modules"]["decoder"].state["_modules"]["net"]
    assert type(net).__name__ == "Sequential" and not isinstance(net, torch.nn.Module)
    assert "decoder.net.0.weight" in state_dict_of(rec)


class _Payload:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


@pytest.mark.parametrize("make, global_name", [
    (lambda m: _Payload(os.system, (f"touch {m}",)), os.system.__module__ + ".system"),
    (lambda m: _Payload(builtins.exec, (f"open(r'{m}', 'w').close()",)), "builtins.exec"),
    (lambda m: _Payload(builtins.eval, (f"open(r'{m}', 'w').close()",)), "builtins.eval"),
    (lambda m: _Payload(subprocess.Popen, (["touch", str(m)],)), "subprocess.Popen"),
])
def test_malicious_global_is_refused(pub, marker, make, global_name):
    data = pub.published_pickle_bytes(marker, extra={"evil": make(marker)})
    with pytest.raises(UnsafePickleError, match=f"refusing to load global '{global_name}'"):
        load_published(data)
    assert not marker.exists()


def test_refusal_names_the_file(pub, tmp_path, marker):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pub.published_pickle_bytes(marker, extra={"evil": _Payload(os.system, (f"touch {marker}",))}))
    with pytest.raises(UnsafePickleError, match=r"network pickle .*evil.pkl: refusing to load global"):
        load_published(path)


def test_truncated_and_foreign_files(pub, tmp_path, marker):
    data = pub.published_pickle_bytes(marker)
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match=r"network pickle .*cut.pkl: not a readable pickle"):
        load_published(path)
    path.write_bytes(b"hello world")
    with pytest.raises(ValueError, match="not a readable pickle"):
        load_published(path)
    buf = io.BytesIO()
    torch.save({"x": torch.zeros(1)}, buf)
    path.write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="is a zip archive"):
        load_published(path)
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match="expected a dict of networks"):
        load_published(path)


def test_tensor_views_are_bounds_checked():
    storage = torch.arange(6, dtype=torch.float32).untyped_storage()
    t = _tensor_from_storage(storage, 1, (2, 2), (2, 1), torch.float32)
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(ValueError, match="exceeds its storage of 6"):
        _tensor_from_storage(storage, 0, (4, 4), (4, 1), torch.float32)
    with pytest.raises(ValueError, match="must be a torch storage"):
        _tensor_from_storage(storage, 0, (1,), (1,))  # untyped without a dtype
    with pytest.raises(ValueError, match="must be a torch storage"):
        _tensor_from_storage(b"123", 0, (1,), (1,))
    with pytest.raises(ValueError, match="is invalid"):
        _tensor_from_storage(storage, -1, (1,), (1,), torch.float32)
