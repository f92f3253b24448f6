"""The avatar file (.n3d) round trip, and stage 1's bad-input messages (no face, several faces, a pose far
outside the training range, a too-small crop, another head topology)."""

import numpy as np
import pytest
import torch

from next3d.animation.avatar import AvatarError, load_avatar, save_avatar_checkpoint
from next3d.fitting.detect import Detection, LandmarkDetector, NoFaceError
from next3d.inversion.target import InversionInputError, check_topology, parse_item_spec, target_from_photo


def test_avatar_checkpoint_round_trips_and_loads_as_a_network(tiny_G, truth, tmp_path):
    from next3d.generate import load_generator

    neutral = {"expression": truth.flame["expression"][0], "jaw": truth.flame["jaw"][0]}
    path = save_avatar_checkpoint(tmp_path / "a.n3d", tiny_G, truth.ws, truth.flame["shape"][0], neutral=neutral,
                                  camera=truth.camera[0], source={"sha256": "ab" * 32})
    avatar = load_avatar(path)
    avatar.check(tiny_G)
    assert torch.equal(avatar.ws, truth.ws[0]) and torch.equal(avatar.shape, truth.flame["shape"][0])
    assert torch.equal(avatar.neutral["jaw"], truth.flame["jaw"][0]) and torch.equal(avatar.camera, truth.camera[0])
    assert avatar.generator == path and avatar.source["sha256"] == "ab" * 32
    assert avatar.head_topology is not None
    G2 = load_generator(str(path))
    assert all(torch.equal(v, tiny_G.state_dict()[k]) for k, v in G2.state_dict().items())
    with pytest.raises(AvatarError, match="ws has shape"):
        save_avatar_checkpoint(tmp_path / "b.n3d", tiny_G, truth.ws[:, :3], truth.flame["shape"][0])
    assert not (tmp_path / "b.n3d").exists()


def test_a_plain_checkpoint_is_not_an_avatar(tiny_G, tmp_path):
    from next3d.checkpoint import save_checkpoint

    path = save_checkpoint(tmp_path / "net.n3d", config=tiny_G.config, G=tiny_G)
    with pytest.raises(AvatarError, match="without an avatar .*pass it as --network"):
        load_avatar(path)


class FakeDetector(LandmarkDetector):
    """Returns given landmarks (photo pixels) and face count, or no face."""

    name = "fake"

    def __init__(self, landmarks, num_faces=1):
        self.landmarks, self.num_faces = landmarks, num_faces

    def detect(self, image, face=None, what="image"):
        if self.landmarks is None:
            raise NoFaceError(f"{what}: no face found")
        lo, hi = self.landmarks.min(0), self.landmarks.max(0)
        return Detection(landmarks=self.landmarks, box=(*lo, *hi), num_faces=self.num_faces, face_index=face or 0)


def _photo_landmarks(G, yaw, size, scale=1.0):
    """Model landmarks of the mean head at camera yaw `yaw` projected into a size x size photo."""
    from next3d.fitting.landmark_fit import project_landmarks
    from next3d.render.cameras import orbit_label

    lmk = G.flame().landmarks
    uv = project_landmarks(lmk, orbit_label(yaw, 0.0))[0].numpy().astype(np.float64)
    return (0.5 + (uv - 0.5) * scale) * size


def _png(tmp_path, size=256):
    from PIL import Image

    path = tmp_path / "p.png"
    Image.fromarray(np.random.RandomState(0).randint(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
    return path


FAST_FIT = None


def _fast_fit():
    from next3d.fitting import FitConfig

    return FitConfig(rigid_iters=20, full_iters=10)


def test_several_faces_and_a_far_pose_are_warnings(tiny_G, tmp_path):
    photo = _png(tmp_path)
    det = FakeDetector(_photo_landmarks(tiny_G, 1.1, 256), num_faces=3)
    target = target_from_photo(photo, tiny_G, det, fit_config=_fast_fit())
    assert target.image.shape == (1, 3, 64, 64) and target.image.min() >= -1 and target.image.max() <= 1
    assert any("3 faces found; inverting the largest (choose another with --face K)" in w for w in target.warnings)
    yaw = target.source["yaw_pitch_roll_deg"][0]
    assert yaw > 45
    assert any(f"yaw {yaw:+.1f} deg" in w and "far outside the training range" in w for w in target.warnings)
    assert len(target.source["sha256"]) == 64 and target.source["detection"]["num_faces"] == 3
    assert 0.05 < float(target.mask.mean()) < 0.95  # the face region covers part of the crop


def test_frontal_photo_has_no_warning_and_a_small_face_is_refused(tiny_G, tmp_path):
    photo = _png(tmp_path)
    target = target_from_photo(photo, tiny_G, FakeDetector(_photo_landmarks(tiny_G, 0.1, 256)), fit_config=_fast_fit())
    assert target.warnings == [] and abs(target.source["yaw_pitch_roll_deg"][0]) < 15
    small = _photo_landmarks(tiny_G, 0.0, 256, scale=0.08)  # a face ~10 px wide
    with pytest.raises(InversionInputError, match="the face crop covers only .* px of the photo"):
        target_from_photo(photo, tiny_G, FakeDetector(small), fit_config=_fast_fit())
    with pytest.raises(InversionInputError, match="no face found"):
        target_from_photo(photo, tiny_G, FakeDetector(None))
    with pytest.raises(InversionInputError, match="cannot read the photo"):
        target_from_photo(tmp_path / "missing.jpg", tiny_G, FakeDetector(None))


def test_real_detector_finds_no_face_in_noise(tiny_G, tmp_path):
    import importlib.util

    pytest.importorskip("dlib")
    if importlib.util.find_spec("face_recognition_models") is None:  # never imported (needs pkg_resources)
        pytest.skip("face_recognition_models is not installed")
    with pytest.raises(InversionInputError, match="no face found"):
        target_from_photo(_png(tmp_path, 128), tiny_G)


def test_another_head_topology_and_item_specs_are_refused(tiny_G):
    with pytest.raises(InversionInputError, match="made for head topology deadbeef.*network's head model"):
        check_topology(tiny_G, "deadbeef", "data set x")
    check_topology(tiny_G, None, "data set x")
    assert parse_item_spec("/a/b:c/set:17") == (__import__("pathlib").Path("/a/b:c/set"), 17)
    with pytest.raises(InversionInputError, match="expected DATASET:INDEX"):
        parse_item_spec("set")
