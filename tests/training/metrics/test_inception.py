"""The project's Inception-v3: pt_inception key layout, state_dict file round trip."""

import pytest
import torch

from next3d.perceptual import PerceptualError
from next3d.perceptual.inception import InceptionV3
from training.metrics.feature_nets import InceptionEmbedding


def test_layout_and_file_round_trip(tmp_path):
    torch.manual_seed(0)
    model = InceptionV3()
    sd = model.state_dict()
    # The published FID weights layout: 94 conv + batch-norm units and the 1008-class head.
    assert sum(k.endswith(".conv.weight") for k in sd) == 94
    assert sd["fc.weight"].shape == (1008, 2048)
    assert sd["Mixed_7c.branch3x3dbl_3b.conv.weight"].shape == (384, 384, 3, 1)
    assert sd["Conv2d_1a_3x3.bn.running_var"].shape == (32,)
    # Random statistics so that batch norm is not the identity; saved without num_batches_tracked.
    for k, v in sd.items():
        if k.endswith("running_mean"):
            v.normal_(0, 0.1)
        elif k.endswith("running_var"):
            v.uniform_(0.5, 2.0)
    path = tmp_path / "pt_inception.pth"
    torch.save({k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}, path)
    emb = InceptionEmbedding(str(path))
    loaded = emb.net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in sd.items() if not k.endswith("num_batches_tracked"))
    x = torch.randint(0, 256, (1, 3, 40, 40), dtype=torch.uint8)
    with torch.no_grad():
        ours = emb(x)
    # pool3 of ReLU features: non-negative, not constant, finite.
    assert ours.shape == (1, 2048) and (ours >= 0).all() and ours.std() > 0 and torch.isfinite(ours).all()
    assert emb.fingerprint.startswith("inception-pool3-v1-")
    # A file of another layout is refused with one line naming it.
    bad = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(PerceptualError, match=r"other\.pth.*missing Conv2d_1a_3x3"):
        InceptionV3.from_file(bad)
