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

from polysent.config import complete

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


def load_models() -> None:
    """Load dlib's detector and shape predictor into this process (once; ~1.1 CPU-s).

    Worker processes forked afterwards inherit them instead of each loading its own copy.
    """
    _dlib_models()


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
        self.cfg = complete(cfg, "visual", "landmarks")
        self.detector, self.predictor = _dlib_models()

    def __call__(self, gray: np.ndarray) -> tuple[bool, float, np.ndarray]:
        """(success, confidence, features) of one uint8 grayscale frame; NaN features if no face."""
        found = self.detect(gray)
        if found is None:
            return no_face()
        rect, score = found
        return True, score, geometry(self.landmarks(gray, rect), gray.shape[1])

    def detect(self, gray: np.ndarray):
        """(dlib.rectangle in ``gray``'s pixels, HOG score) of the largest face, or None."""
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
            return None
        best = max(range(len(rects)), key=lambda i: (rects[i].area(), scores[i]))  # the speaker
        r = rects[best]
        rect = dlib.rectangle(
            int(round(r.left() / scale)),
            int(round(r.top() / scale)),
            int(round(r.right() / scale)),
            int(round(r.bottom() / scale)),
        )
        return rect, float(scores[best])

    def landmarks(self, gray: np.ndarray, rect) -> np.ndarray:
        """68x2 landmark array (image pixels) the shape predictor places from ``rect``."""
        shape = self.predictor(gray, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def no_face() -> tuple[bool, float, np.ndarray]:
    return False, float("nan"), np.full(len(FEATURES), np.nan, np.float32)


def thumbnail(gray: np.ndarray) -> np.ndarray:
    """About 16x16 block means of a frame (float32 grey levels): the picture for change tests.

    Every 4th pixel of every 4th row is enough to see a cut (and costs ~1/50 of a PIL resize);
    rows and columns beyond a whole number of blocks are left out.
    """
    sub = gray[::4, ::4].astype(np.float32)
    bh, bw = max(1, sub.shape[0] // 16), max(1, sub.shape[1] // 16)
    h, w = sub.shape[0] // bh * bh, sub.shape[1] // bw * bw
    return sub[:h, :w].reshape(h // bh, bh, w // bw, bw).sum(axis=(1, 3)) / (bh * bw)


def face_patch(gray: np.ndarray, centre: np.ndarray, radius: float, n: int = 16) -> np.ndarray:
    """``n`` x ``n`` grey levels sampled on a grid over the face (centre +- 1.2 RMS radii), zero
    mean and unit norm: the face's appearance, comparable across frames by a dot product."""
    h, w = gray.shape
    grid = _patch_grid(n) * radius
    xs = np.clip(np.rint(centre[0] + grid), 0, w - 1).astype(np.intp)
    ys = np.clip(np.rint(centre[1] + grid), 0, h - 1).astype(np.intp)
    patch = gray[ys[:, None], xs].astype(np.float32).ravel()
    patch -= patch.sum() / patch.size  # sum / size: np.mean's dispatch costs more than the sum
    norm = float(np.sqrt(patch @ patch))
    return patch / norm if norm > 0 else patch


@lru_cache(maxsize=4)
def _patch_grid(n: int) -> np.ndarray:
    return np.linspace(-1.2, 1.2, n)


def _spread(pts: np.ndarray) -> tuple[np.ndarray, float]:
    """Centroid and RMS radius of a landmark set: where the face is and how large."""
    centre = pts.sum(0) / len(pts)
    return centre, float(np.sqrt(((pts - centre) ** 2).sum() / len(pts)))


class LandmarkTracker:
    """:class:`LandmarkExtractor` that detects every ``detect_every`` frames and tracks between.

    One instance per video, fed its frames in order. A tracked frame skips the HOG detector (the
    dominant cost). With ``predict_every: K > 1`` its landmarks are those of the last predicted
    frame moved by optical flow (below); where flow does not carry a frame, ``restart`` says where
    the 68-point shape predictor starts:

    * ``detection``: from a fresh detector box, i.e. the frame is detected. The predictor's points
      depend on its start box: on a real expressive face, starting it from any box other than the
      detector's own for that frame (even the previous frame's detector box) moved the features by
      p99 0.12-0.15 inter-ocular distances, twice the tolerance against detect-every-frame, while
      flow frames that pass the check stay within it. So a frame is either exactly
      detect-every-frame's or a checked flow frame;
    * ``tracked_box``: from the box the *previous frame's* landmarks imply, placed relative to
      them exactly as the last detector box was placed relative to its own landmarks (so a still
      face gets the detector's box back). Faster where flow fails often, exact only on still faces.

    The frame is detected in any case when

    * ``detect_every`` frames have passed since the last detection (bounds any drift);
    * the picture changed: the mean absolute difference of 16x16 thumbnails from the previous
      frame exceeds ``max_change`` grey levels (a cut or cutaway: tracking never carries a face
      onto a new shot);
    * the tracked landmarks moved implausibly: centroid shift or change of RMS radius above
      ``max_motion`` times the previous radius;
    * the tracked face no longer looks like the detected one (the cheap confidence): the
      normalised cross-correlation of a 16x16 grey patch over the tracked landmarks with the same
      patch at the last detection is below ``min_similarity``. A face that moved away from a
      stale box leaves the predictor's points on the wrong spot, and this is what catches it;
    * the previous frame had no face. A face-less frame whose thumbnail differs from the previous
      face-less frame by at most ``still_change`` (a still b-roll shot) stays face-less without
      running the detector, until the next periodic detection.

    With ``predict_every: K > 1`` the shape predictor (after tracking the dominant cost) runs only
    on detected frames and at most every K-th frame after them; in between the 68 points are moved
    from the last predicted frame by pyramidal Lucas-Kanade optical flow (:func:`flow_points`), mode
    ``flow``. A flow frame falls back to the predictor (started as ``restart`` says) when any
    point's forward-backward error exceeds ``flow_max_error`` pixels (or OpenCV loses a point),
    and it passes the same motion and similarity checks as a predicted one, else it is detected.
    With ``restart: detection`` and ``predict_every: 1`` every frame is detected.

    ``detect_every: 1`` is detect-every-frame, identical to :class:`LandmarkExtractor`. Tracked
    frames report the score of the detection they descend from as their confidence.
    """

    def __init__(self, cfg: dict | None = None):
        self.extractor = LandmarkExtractor(cfg)
        self.cfg = self.extractor.cfg
        self.every = int(self.cfg["detect_every"])
        self.predict_every = int(self.cfg["predict_every"])
        self.counts = {"detect": 0, "track": 0, "flow": 0, "flow_failed": 0, "still": 0}
        self.mode = ""
        self._since = None  # frames since the last detection (None: never detected)
        self._thumb = None
        self._key = None  # (frame, landmarks) where the shape predictor last ran: flow starts there
        self._since_predict = 0  # frames since then
        self._pts = None  # landmarks of the previous frame, None when it had no face
        self._spread = None  # their (centroid, RMS radius)
        self._patch = None  # face_patch of the last detection
        self.similarity = float("nan")  # of the last tracked frame to it
        self._box = None  # last detector box relative to its landmarks (centre offset, size)
        self._score = float("nan")

    def __call__(self, gray: np.ndarray) -> tuple[bool, float, np.ndarray]:
        """(success, confidence, features) of the next frame of the video."""
        thumb = thumbnail(gray) if self.every > 1 else None
        change = np.inf if self._thumb is None else float(np.abs(thumb - self._thumb).mean())
        self._thumb = thumb
        due = self._since is None or self._since + 1 >= self.every
        if not due and self._pts is not None and change <= self.cfg["max_change"]:
            pts, mode = self._flow(gray), "flow"
            if pts is None and self.cfg["restart"] == "detection":
                return self._detect(gray)  # the predictor starts from the detector's box only
            if pts is None:
                pts, mode = self.extractor.landmarks(gray, self._tracked_box()), "track"
            spread = _spread(pts)
            if self._plausible(spread) and self._looks_alike(gray, spread):
                return self._face(gray, pts, spread, mode)
        elif not due and self._pts is None and change <= self.cfg["still_change"]:
            self._since += 1
            self._set_mode("still")
            return no_face()
        return self._detect(gray)

    def forget(self) -> None:
        """Detect on the next frame (the caller skipped frames: nothing to track from)."""
        self._since, self._thumb, self._key = None, None, None

    def _flow(self, gray: np.ndarray) -> np.ndarray | None:
        """The landmarks of the last predicted frame moved to ``gray`` by optical flow, or None
        when the predictor is due or the flow fails its check.

        Flow runs from that key frame, not from the previous frame: chained frame-to-frame flow
        accumulates its errors (on the demo, lip_height p99 0.069 against 0.064 from the key frame,
        and 15 % more check failures), while a mouth that returns to its key-frame shape comes
        back exactly.
        """
        due = self._since_predict + 1 >= self.predict_every
        if self.predict_every <= 1 or self._key is None or due:
            return None
        key_gray, key_pts = self._key
        pts = flow_points(key_gray, gray, key_pts, self.cfg["flow_max_error"], int(self.cfg["flow_window"]))
        if pts is None:
            self.counts["flow_failed"] += 1
        return pts

    def _detect(self, gray: np.ndarray):
        self._since = 0
        found = self.extractor.detect(gray)
        if found is None:
            self._pts = None
            self._set_mode("detect")
            return no_face()
        rect, self._score = found
        pts = self.extractor.landmarks(gray, rect)
        spread = centre, radius = _spread(pts)
        self._patch = face_patch(gray, centre, radius)
        self._box = (
            (np.array([rect.left() + rect.right(), rect.top() + rect.bottom()]) / 2 - centre) / radius,
            np.array([rect.width(), rect.height()]) / radius,
        )
        self._since = -1  # _face counts this frame
        return self._face(gray, pts, spread, "detect")

    def _face(self, gray: np.ndarray, pts: np.ndarray, spread, mode: str):
        self._since += 1
        self._since_predict = self._since_predict + 1 if mode == "flow" else 0
        if mode != "flow":
            self._key = (gray, pts)
        self._pts, self._spread = pts, spread
        self._set_mode(mode)
        return True, self._score, geometry(pts, gray.shape[1])

    def _set_mode(self, mode: str) -> None:
        self.mode = mode
        self.counts[mode] += 1

    def _tracked_box(self):
        import dlib

        centre, radius = self._spread
        offset, size = self._box
        c = centre + offset * radius
        w, h = size * radius
        # dlib.rectangle is inclusive: width = right - left + 1
        left, top = int(round(c[0] - (w - 1) / 2)), int(round(c[1] - (h - 1) / 2))
        return dlib.rectangle(left, top, left + int(round(w)) - 1, top + int(round(h)) - 1)

    def _looks_alike(self, gray: np.ndarray, spread) -> bool:
        """The tracked face still looks like the detected one (normalised cross-correlation)."""
        self.similarity = float(face_patch(gray, *spread) @ self._patch)
        return self.similarity >= self.cfg["min_similarity"]

    def _plausible(self, spread: tuple[np.ndarray, float]) -> bool:
        (before, r0), (after, r1) = self._spread, spread
        limit = self.cfg["max_motion"]
        return bool(np.hypot(*(after - before)) <= limit * r0 and abs(r1 - r0) <= limit * r0 and r1 > 0)


@lru_cache(maxsize=1)
def _cv2():
    import cv2

    cv2.setNumThreads(1)  # one core per worker process, as the detector (per-core throughput)
    return cv2


# The landmarks :func:`geometry` reads (chin, brows, nose, eyes, mouth); the other 16 jaw-outline
# points only place the predictor's box and the face patch. On the outline the flow often slides
# along the face edge (the aperture problem), so the forward-backward check leaves them out.
GEOMETRY_POINTS = np.array([8, *range(17, 68)])
_OUTLINE = np.setdiff1d(np.arange(68), GEOMETRY_POINTS)


def flow_points(
    prev: np.ndarray, gray: np.ndarray, pts: np.ndarray, max_error: float, window: int = 15
) -> np.ndarray | None:
    """``pts`` (68x2, pixels of ``prev``) moved to ``gray`` by pyramidal Lucas-Kanade flow, or None.

    The forward-backward check tracks the moved points back to ``prev``: a point that does not
    return to within ``max_error`` pixels of where it started (or that OpenCV loses either way)
    was not followed reliably (a lid or lip change too large for the window, blur), and then the
    whole set is rejected when it is one of :data:`GEOMETRY_POINTS`. An outline point that fails
    moves by the median displacement of the others instead.
    """
    cv2 = _cv2()
    start = np.ascontiguousarray(pts, dtype=np.float32).reshape(-1, 1, 2)
    # 2 pyramid levels carry motion up to ~4 windows; on the demo 1 level gave the same points
    lk = {"winSize": (window, window), "maxLevel": 2}
    moved, ok, _ = cv2.calcOpticalFlowPyrLK(prev, gray, start, None, **lk)
    back, ok_back, _ = cv2.calcOpticalFlowPyrLK(gray, prev, moved, None, **lk)
    error = np.sqrt(((back - start) ** 2).sum(-1)).ravel()
    good = ok.ravel().astype(bool) & ok_back.ravel().astype(bool) & (error <= max_error)
    if not good[GEOMETRY_POINTS].all():
        return None
    start, moved = start.reshape(-1, 2), moved.reshape(-1, 2).astype(np.float64)
    lost = _OUTLINE[~good[_OUTLINE]]
    if len(lost):
        moved[lost] = start[lost] + np.median(moved[good] - start[good], axis=0)
    return moved


def _resize(gray: np.ndarray, scale: float) -> np.ndarray:
    from PIL import Image

    h, w = gray.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(gray).resize(size, Image.BILINEAR, reducing_gap=2.0))
