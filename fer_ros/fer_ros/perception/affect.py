"""Valence and arousal of a face, derived from its expression probabilities. No ROS here.

No valence/arousal-labelled data trained these models: each class is placed at published
coordinates and a face gets the probability-weighted mean. Valence and arousal are the
pleasure and arousal ratings of the emotion terms in Russell & Mehrabian (1977), "Evidence
for a three-factor theory of emotions", J. Research in Personality 11, 273-294 (scale -1..1),
the table affective-computing systems (e.g. ALMA) use to place Ekman's expressions. Neutral
is the origin. The table has no contempt: it takes disgust's place, the nearest listed term.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

CIRCUMPLEX = {  # class: (valence, arousal)
    'neutral': (0.00, 0.00),
    'happy': (0.81, 0.51),
    'surprise': (0.40, 0.67),
    'sad': (-0.63, -0.27),
    'angry': (-0.51, 0.59),
    'disgust': (-0.60, 0.35),
    'fear': (-0.64, 0.60),
    'contempt': (-0.60, 0.35),
}


def valence_arousal(probabilities: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    """(N, 2) valence and arousal in [-1, 1] of (N, classes) probabilities.

    A class without coordinates counts as neutral. Probabilities are renormalised over the
    classes, so any model's label set works."""
    coords = np.array([CIRCUMPLEX.get(name, (0.0, 0.0)) for name in class_names], np.float32)
    p = np.asarray(probabilities, np.float32).reshape(-1, len(class_names))
    total = p.sum(axis=1, keepdims=True)
    return (p / np.where(total > 0, total, 1.0)) @ coords
