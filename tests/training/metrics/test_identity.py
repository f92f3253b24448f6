"""ID metric: dlib descriptors of a real photo, its flipped / cropped versions and another face."""

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import SHARED
from training.metrics.face_models import FaceModels, cosine_similarity, to_hwc_uint8
from training.metrics.feature_nets import MetricError

pytest.importorskip("dlib")
PHOTO = SHARED / "photos" / "grace_hopper.jpg"


@pytest.fixture(scope="module")
def models():
    return FaceModels()


@pytest.fixture(scope="module")
def photo():
    if not PHOTO.is_file():
        pytest.skip("../shared/photos is not present")
    return np.asarray(Image.open(PHOTO).convert("RGB"))


@pytest.fixture(scope="module")
def other_face():
    """The built-in head, shaded: a face dlib finds, not Grace Hopper's."""
    from next3d.flame import FLAME, load_flame_model
    from next3d.render.cameras import orbit_label
    from next3d.render.mesh_shading import render_mesh

    flame = FLAME(load_flame_model(None))
    out = flame(batch_size=1)
    shaded = render_mesh(out.vertices, flame.faces, orbit_label(0.0), 192).shaded[0]
    return ((shaded + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def test_same_photo_flipped_cropped_and_other_face(models, photo, other_face):
    from training.metrics.identity import photo_identity

    variants = [photo, np.ascontiguousarray(photo[:, ::-1]), np.ascontiguousarray(photo[60:560, 40:500])]
    results = [models.analyse(v) for v in variants + [other_face]]
    assert all(r.detected for r in results)
    desc = np.stack([r.descriptor for r in results])
    assert desc.shape == (4, 128)
    sims = cosine_similarity(desc, desc[:1])
    assert sims[0] == pytest.approx(1.0, abs=1e-9)
    assert sims[1] > 0.97 and sims[2] > 0.97          # the same person
    assert sims[3] < min(sims[1], sims[2]) - 0.05     # another face scores lower
    assert np.linalg.norm(desc[1] - desc[0]) < 0.6 < np.linalg.norm(desc[3] - desc[0])  # dlib's threshold
    # Photo mode: the photo against (itself, flipped) as a batch of renders.
    renders = torch.stack([torch.from_numpy(v.copy()).permute(2, 0, 1) for v in variants[:2]])
    res = photo_identity(photo, renders, models=models)
    assert res["id_photo"] == pytest.approx((1.0 + sims[1]) / 2, abs=1e-6)
    assert res["id_photo_min"] == pytest.approx(sims[1], abs=1e-6) and res["id_detect_rate"] == 1.0


def test_landmarks_and_fallback(models, photo):
    res = models.analyse(photo, descriptor=False, landmarks=True)
    assert res.landmarks.shape == (68, 2)
    left, top, right, bottom = res.box
    inside = ((res.landmarks[:, 0] > left - 20) & (res.landmarks[:, 0] < right + 20) &
              (res.landmarks[:, 1] > top - 20) & (res.landmarks[:, 1] < bottom + 40))
    assert inside.all()
    assert res.landmarks[36:42, 0].mean() < res.landmarks[42:48, 0].mean()  # eye order in the image
    blank = models.analyse(np.zeros((64, 64, 3), np.uint8))
    assert not blank.detected and blank.box == pytest.approx((0.22 * 64, 0.26 * 64, 0.78 * 64, 0.82 * 64), abs=0.3)


def test_bad_images_are_refused():
    with pytest.raises(MetricError, match=r"expected \(3, H, W\)"):
        to_hwc_uint8(torch.zeros(1, 3, 8, 8))
    with pytest.raises(MetricError, match="uint8"):
        to_hwc_uint8(np.zeros((8, 8, 3), np.float32))
