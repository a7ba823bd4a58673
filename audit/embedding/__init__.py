"""Image embeddings: which embedder a spec names (backends.py): open_clip in torch (embedder.py) or an
ONNX image tower in onnxruntime (onnx.py); named encoders in the model cache (encoders.py) and other
downloadable models (pull.py); open_clip towers exported to ONNX (export.py); the scan's embedding
stage that embeds each batch once for the probe and the bank (stage.py), and the content-hash cache
(cache.py)."""

from audit.embedding.embedder import Embedder, EmbedderSpec, WeightsMissing

__all__ = ["Embedder", "EmbedderSpec", "WeightsMissing"]
