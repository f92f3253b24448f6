"""The served page through gradio_client: render, errors as messages, the server keeps running."""

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")

from gradio_client.exceptions import AppError  # noqa: E402



def _values(seed=0, yaw=0.0, jaw=0.0, n_expr=8):
    return [seed, 0.7, yaw, 0.0, jaw, 0.0, 0.0, 0.0, 0.0] + [0.0] * n_expr


def test_render_through_the_api(served_demo, tmp_path, deadline):
    with deadline(60, "gradio_client test"):
        assert served_demo.url.startswith("http://127.0.0.1:") and served_demo.share_url is None
        client = gradio_client.Client(served_demo.url, verbose=False, download_files=str(tmp_path))
        n_expr = served_demo.demo.generate_tab.n_expr
        image_a, depth_a, status_a = client.predict(*_values(3, n_expr=n_expr), api_name="/render")
        image_b, _, status_b = client.predict(*_values(3, yaw=30.0, n_expr=n_expr), api_name="/render")
        a = np.asarray(Image.open(image_a).convert("RGB"), dtype=int)
        b = np.asarray(Image.open(image_b).convert("RGB"), dtype=int)
        assert a.shape == (64, 64, 3) and np.asarray(Image.open(depth_a)).shape[:2] == (64, 64)
        assert status_a.startswith("seed 3 · 64×64") and "camera only: planes reused" in status_b
        assert np.abs(a - b).mean() > 1.0

        # A value outside a slider: Gradio's own one-line message; the server keeps answering.
        with pytest.raises(AppError, match="Value 500.0 is greater than maximum value 90"):
            client.predict(*_values(3, yaw=500.0, n_expr=n_expr), api_name="/render")
        # Values the sliders accept but the demo refuses come back as the status message.
        files, status_ply = client.predict(24, 1000.0, *_values(3, n_expr=n_expr), api_name="/export_ply")
        assert "never crosses the level 1000" in status_ply
        files, status_ply = client.predict(24, 0.0, *_values(3, n_expr=n_expr), api_name="/export_ply")
        assert status_ply.startswith("wrote seed0003-") and str(files[0]).endswith(".ply")
        files, status_auto = client.predict(24, None, *_values(3, n_expr=n_expr), api_name="/export_ply")
        assert "(auto: the density at the rendered depth)" in status_auto, status_auto
        again, _, status_again = client.predict(*_values(3, n_expr=n_expr), api_name="/render")
        assert np.array_equal(np.asarray(Image.open(again).convert("RGB"), dtype=int), a)
