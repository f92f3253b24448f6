"""The Video tab through gradio_client (runs once `next3d.animation` is present; skips before)."""

import pytest

pytest.importorskip("gradio")
pytest.importorskip("next3d.animation.video")
imageio = pytest.importorskip("imageio.v2")
gradio_client = pytest.importorskip("gradio_client")


def test_orbit_video_through_the_api(served_demo, tmp_path, deadline):
    with deadline(60, "video tab test"):
        client = gradio_client.Client(served_demo.url, verbose=False, download_files=str(tmp_path))
        video, files, status = client.predict(1, 8, "orbit", "none", False, api_name="/render_video")
        assert status.startswith("wrote orbit-seed0001.mp4: 8 frames"), status
        path = files[0] if isinstance(files, list) else files
        reader = imageio.get_reader(str(path))
        try:
            frames = [f for f in reader]
        finally:
            reader.close()
        assert len(frames) == 8 and frames[0].shape[0] % 2 == 0 and frames[0].shape[1] % 2 == 0
