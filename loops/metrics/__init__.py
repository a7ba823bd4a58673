"""Quality and diversity of generated samples: FID, precision, recall, density, coverage and the
closed-form Gaussian measures (measures.py), the feature extractors they run on (features.py, and
the small MNIST classifier in classifier.py), and PSD square roots (linalg.py)."""

from loops.metrics.measures import fid, gaussian_w2, measure, prdc

__all__ = ["fid", "gaussian_w2", "measure", "prdc"]
