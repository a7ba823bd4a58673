"""Image embeddings: the open_clip embedder and its weights (embedder.py), the scan's embedding
stage that embeds each batch once for the probe and the bank (stage.py), the content-hash cache
(cache.py), and named downloadable models (pull.py)."""
from audit.embedding.embedder import Embedder, EmbedderSpec, WeightsMissing

__all__ = ["Embedder", "EmbedderSpec", "WeightsMissing"]
