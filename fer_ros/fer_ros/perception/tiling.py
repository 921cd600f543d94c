"""Tiled face detection: BlazeFace sees the whole frame at 128-192 px, so in wide crowd
frames small faces fall below its scale; overlapping tiles show them at a usable size."""
from __future__ import annotations

import math
from dataclasses import replace

import cv2
import numpy as np

from fer_ros.perception.detection import DETECT_MAX_SIDE, Face, FaceDetector, merge_faces

Box = tuple[int, int, int, int]

# Larger frames are downscaled to this before tiling, which bounds the cost at a 4K frame's
# (about 40 tiles of 640 px); faces in them stay above the ~40 px tiles still find.
TILED_MAX_SIDE = 2 * DETECT_MAX_SIDE


def _starts(size: int, tile: int, overlap: float) -> list[int]:
    if size <= tile:
        return [0]
    step = max(math.floor(tile * (1.0 - overlap)), 1)  # the longest step keeping the overlap
    n = -(-(size - tile) // step) + 1
    return [i * (size - tile) // (n - 1) for i in range(n)]


def tiles(width: int, height: int, tile: int, overlap: float) -> list[Box]:
    """(x, y, w, h) windows of side `tile` (the frame's side where smaller) covering the frame,
    neighbours overlapping by at least `overlap` of a tile, the last ones on the border."""
    if tile <= 0 or not 0.0 <= overlap < 1.0:
        raise ValueError(f'need tile > 0 and 0 <= overlap < 1, got {tile}, {overlap}')
    w, h = min(tile, width), min(tile, height)
    return [(x, y, w, h) for y in _starts(height, tile, overlap)
            for x in _starts(width, tile, overlap)]


# Measured on the 512 px astronaut (one face): 128-px tiles add 8 false boxes, 192-320 px one;
# from 384 px none. Smaller tiles cost several times the detection time.
MIN_TILE = 384
# A face found in a tile is kept from this fraction of the tile's side (640: 32 px), under
# the ~40 px tiles find (TiledDetector): smaller boxes were false.
MIN_FACE_OF_TILE = 1 / 20


def check_tile(tile: int) -> str | None:
    """Why a tile side is unusable (0 = no tiling), or None."""
    return None if tile == 0 or tile >= MIN_TILE else f'use 0 (off) or at least {MIN_TILE} px'


class TiledDetector:
    """FaceDetector's drop-in (same options): frames whose longer side is at least `min_side`
    are detected whole and in overlapping `tile`-px squares, smaller frames only whole; then
    duplicates are merged (merge_faces) and max_faces applied.

    Defaults measured on group photos composed into 1080p and 4K frames: 640-px tiles find
    faces down to ~40 px (768: ~50 px; 512: no more faces, twice the false boxes); from
    960 px on, tiling raises recall from ~1/3 to ~4/5 of the faces (below: at most two tiles).
    """

    def __init__(self, model: str = 'full_range', min_confidence: float = 0.3,
                 max_faces: int = 0, min_suppression: float = 0.3, tile: int = 640,
                 overlap: float = 0.25, min_side: int | None = None):
        if tile < MIN_TILE:
            raise ValueError(f'tile must be at least {MIN_TILE} px, got {tile}')
        tiles(tile, tile, tile, overlap)  # checks overlap
        if max_faces < 0:
            raise ValueError(f'max_faces must be >= 0, got {max_faces}')
        # max_faces 0 inside: a face may only be cut after duplicates are merged.
        self.detector = FaceDetector(model, min_confidence, 0, min_suppression)
        self.model, self.min_confidence, self.max_faces = model, min_confidence, max_faces
        self.framing = self.detector.framing
        # at 1.5 tiles and below, at most two tiles: webcam frames stay whole-frame only
        self.tile, self.overlap = tile, overlap
        self.min_side = round(1.5 * tile) if min_side is None else min_side

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Faces of an (H, W, 3) uint8 RGB image, highest score first."""
        faces = self.detector.detect(rgb)
        if max(rgb.shape[:2]) >= self.min_side:
            faces = merge_faces(faces + self._in_tiles(rgb))
        return faces[:self.max_faces] if self.max_faces else faces

    def _in_tiles(self, rgb: np.ndarray) -> list[Face]:
        height, width = rgb.shape[:2]
        scale = min(TILED_MAX_SIDE / max(height, width), 1.0)
        if scale < 1.0:
            rgb = cv2.resize(rgb, (max(round(width * scale), 1), max(round(height * scale), 1)),
                             interpolation=cv2.INTER_AREA)
        sx, sy = width / rgb.shape[1], height / rgb.shape[0]
        faces = []
        for x, y, w, h in tiles(rgb.shape[1], rgb.shape[0], self.tile, self.overlap):
            for f in self.detector.detect(rgb[y:y + h, x:x + w]):
                if max(f.width, f.height) < MIN_FACE_OF_TILE * self.tile:
                    continue
                # A face cut by an inner tile border is whole in a neighbour tile.
                if ((f.x <= 1 and x > 0) or (f.y <= 1 and y > 0)
                        or (f.x + f.width >= w - 1 and x + w < rgb.shape[1])
                        or (f.y + f.height >= h - 1 and y + h < rgb.shape[0])):
                    continue
                x0, y0 = round((f.x + x) * sx), round((f.y + y) * sy)
                faces.append(replace(
                    f, x=x0, y=y0, width=min(round((f.x + x + f.width) * sx), width) - x0,
                    height=min(round((f.y + y + f.height) * sy), height) - y0,
                    keypoints=tuple(((kx + x) * sx, (ky + y) * sy) for kx, ky in f.keypoints)))
        return faces

    def close(self) -> None:
        self.detector.close()

    def __enter__(self) -> TiledDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def make_detector(model: str, min_confidence: float, max_faces: int,
                  tile: int) -> FaceDetector | TiledDetector:
    """fer_node's detector: tiled when `tile` (detection_tile) is not 0."""
    if tile:
        return TiledDetector(model, min_confidence, max_faces, tile=tile)
    return FaceDetector(model, min_confidence, max_faces)
