"""Latent sentiment, per-modality latents and the labels of the demo corpus.

Generative story (all draws from seeded generators):

* a video (one speaker's review) has an attitude ``mu_v ~ N(video_mean, video_sd)``;
* a segment is *neutral* (a factual sentence) with probability ``neutral_fraction`` and then has a
  latent near 0, otherwise ``z = mu_v + N(0, segment_sd)`` clipped to [-3, 3];
* each modality m sees ``z_m = s_m * z + sqrt(1 - s_m²) * sd_z * ε_m``: ``s_m`` (config
  ``strengths``) is the correlation between what the modality shows and the latent — text
  strongest, audio weakest by default, as the paper found;
* the sentiment label is the mean of ``annotators`` ratings ``clip(round(z + N(0, annotator_sd)))``
  on the integer [-3, 3] scale, as CMU-MOSEAS averages three MTurk ratings (values in thirds,
  neutral-heavy, mildly positive);
* binary emotions are Bernoulli draws from a logistic model of ``z`` (``resources/demo/emotions.yaml``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from polysent.numeric import sigmoid

# Spread of the segment latent, used to put modality noise on the latent's scale.
LATENT_SD = 1.2


def segment_latent(rng: np.random.Generator, video_mu: float, cfg: dict) -> float:
    if rng.random() < cfg["neutral_fraction"]:
        z = rng.normal(0.0, 0.25)
    else:
        z = video_mu + rng.normal(0.0, cfg["segment_sd"])
    return float(np.clip(z, -3.0, 3.0))


def modality_latent(rng: np.random.Generator, z: float, strength: float) -> float:
    """``z`` seen through a modality whose correlation with the latent is ``strength``."""
    noise = np.sqrt(max(0.0, 1.0 - strength**2)) * LATENT_SD * rng.normal()
    return float(np.clip(strength * z + noise, -3.0, 3.0))


def annotate(rng: np.random.Generator, z: float, annotators: int, annotator_sd: float) -> float:
    """Mean of ``annotators`` integer ratings of ``z`` (multiples of 1/annotators within [-3, 3])."""
    ratings = np.clip(np.rint(z + rng.normal(0.0, annotator_sd, size=annotators)), -3, 3)
    return float(ratings.sum() / annotators)


def load_emotions(resources_dir: str | Path, names: list[str]) -> dict[str, dict]:
    path = Path(resources_dir) / "emotions.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    missing = [n for n in names if n not in spec]
    if missing:
        raise ValueError(f"{path}: no emotion model for {missing}; available: {sorted(spec)}")
    return {n: spec[n] for n in names}


def emotions(rng: np.random.Generator, z: float, models: dict[str, dict]) -> dict[str, float]:
    """0/1 presence of each emotion given the latent ``z`` (logistic model, see module doc)."""
    out = {}
    for name, m in models.items():
        logit = m["intercept"] + m["slope"] * z + m["abs_slope"] * abs(z)
        out[name] = float(rng.random() < sigmoid(logit))
    return out
