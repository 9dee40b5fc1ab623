"""Classification output: the k best classes of a score vector."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Class:
    label_id: int
    score: float


def top_k(scores, k=3, threshold=0.0):
    """The k highest scores above threshold, best first, from a [1, C] or [C] output."""
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    order = np.argsort(-scores, kind="stable")[:k]
    return [Class(int(i), float(scores[i])) for i in order if scores[i] >= threshold]
