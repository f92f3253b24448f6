"""Evaluation metrics, each with one written definition in its module's docstring.

* `fid` — FID and KID on a named feature network (`fid10k_vgg`, `kid10k_vgg`, `fid50k_inception`).
* `identity` — ID consistency with the dlib 128-D face descriptor.
* `transfer` — AED / APD: expression and pose distance through the FLAME fitter.
* `consistency` — multi-view reprojection consistency through the rendered depth, and
  rendered geometry against ground-truth depth / normals (`geometry_error`).
* `registry` — `compute_metric(name, G, dataset, ...)` and `METRIC_NAMES`.

Building blocks: `feature_nets` (the named feature networks), `feature_stats` (statistics
and their cache), `sampling` (generated samples), `face_models` (dlib).

Generated samples take the camera and FLAME parameters of random data-set items, as in
training (`sampling`); data-set feature statistics are cached by content (`feature_stats`).
"""
