from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_ros.perception.detection import Face, FaceDetector, merge_faces
from fer_ros.perception.tiling import MIN_TILE, TILED_MAX_SIDE, TiledDetector, check_tile, tiles

MEDIA = Path(__file__).resolve().parents[2].parent / 'shared' / 'media'
PHOTO_FACES = {1: 4, 2: 3, 3: 5, 4: 6, 5: 5}  # faceapi_bbt<n>.jpg: visible faces
# Rows of (photo, scale) packed left to right into gray canvases: faces of about 40-130 px.
LAYOUTS = {
    (1920, 1080): [[(1, .45), (4, .6), (5, .9)], [(2, 1.3), (3, 1.5)]],
    (3840, 2160): [[(1, 1.0), (5, .5), (4, 1.1), (3, 1.2), (2, .6)],
                   [(5, 1.2), (1, .4), (2, 1.0), (4, .45), (3, .7)],
                   [(4, .8), (3, 1.9), (1, .7), (2, 1.3)]],
}
GAP = 16


def face(x, y, w, h, score):
    return Face(x, y, w, h, score)


# --- tiles -----------------------------------------------------------------------------------

@pytest.mark.parametrize('width, height, tile, overlap', [
    (1920, 1080, 640, 0.25), (3840, 2160, 640, 0.25), (1000, 700, 300, 0.5), (641, 641, 640, 0.0),
    (1280, 720, 512, 0.1)])
def test_tiles_cover_the_frame_with_overlap(width, height, tile, overlap):
    windows = tiles(width, height, tile, overlap)
    covered = np.zeros((height, width), bool)
    for x, y, w, h in windows:
        assert (w, h) == (tile, tile) and x >= 0 and y >= 0
        assert x + w <= width and y + h <= height
        covered[y:y + h, x:x + w] = True
    assert covered.all()
    xs, ys = sorted({w[0] for w in windows}), sorted({w[1] for w in windows})
    assert len(windows) == len(xs) * len(ys)  # a grid
    for starts, size in ((xs, width), (ys, height)):
        assert starts[0] == 0 and starts[-1] + tile == size  # last row and column on the border
        assert all(tile - (b - a) >= overlap * tile for a, b in zip(starts, starts[1:]))


def test_tiles_keep_the_overlap_on_any_frame():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        tile, size = sorted(int(n) for n in rng.integers(20, 5000, 2))
        overlap = float(rng.choice([0.0, rng.random() * 0.95]))
        starts = sorted({x for x, _, _, _ in tiles(size, 1, tile, overlap)})
        assert starts[0] == 0 and starts[-1] + tile == size
        steps = [b - a for a, b in zip(starts, starts[1:])]
        assert all(0 < d <= tile * (1 - overlap) for d in steps)
        assert max(steps, default=0) >= min(steps, default=0) >= max(steps, default=0) - 1


def test_tiles_counts_and_small_frames():
    assert len(tiles(1920, 1080, 640, 0.25)) == 4 * 2
    assert len(tiles(3840, 2160, 640, 0.25)) == 8 * 5
    assert len(tiles(3840, 2160, 640, 0.0)) == 6 * 4
    assert tiles(500, 300, 640, 0.25) == [(0, 0, 500, 300)]
    assert tiles(640, 640, 640, 0.25) == [(0, 0, 640, 640)]
    assert tiles(1000, 500, 640, 0.25) == [(0, 0, 640, 500), (360, 0, 640, 500)]
    with pytest.raises(ValueError):
        tiles(100, 100, 0, 0.25)
    with pytest.raises(ValueError):
        tiles(100, 100, 50, 1.0)


# --- merge_faces -----------------------------------------------------------------------------

def test_merge_drops_overlapping_duplicates_and_keeps_separate_faces():
    a, dup = face(100, 100, 100, 100, 0.9), face(120, 110, 100, 100, 0.6)  # IoU 0.56
    near = face(180, 100, 100, 100, 0.8)  # IoU with a: 0.11
    apart = face(400, 100, 100, 100, 0.5)
    assert merge_faces([dup, near, apart, a]) == [a, near, apart]
    assert merge_faces([a, dup], iou=0.6, containment=0.8) == [a, dup]


def test_merge_drops_nested_boxes_whichever_scores_higher():
    big, small = face(100, 100, 200, 200, 0.7), face(150, 150, 60, 60, 0.9)  # IoU 0.09
    assert merge_faces([big, small]) == [small]
    assert merge_faces([face(100, 100, 200, 200, 0.95), small]) == [face(100, 100, 200, 200, 0.95)]
    half_in = face(270, 150, 60, 60, 0.9)  # half of it inside big: kept
    assert merge_faces([big, half_in]) == [half_in, big]
    assert merge_faces([big, small], containment=1.0) == [small, big]


def test_merge_orders_by_score_and_keeps_empty():
    faces = [face(i * 100, 0, 50, 50, s) for i, s in enumerate([0.4, 0.9, 0.6, 0.7])]
    assert [f.score for f in merge_faces(faces)] == [0.9, 0.7, 0.6, 0.4]
    assert merge_faces([]) == []


# --- TiledDetector ---------------------------------------------------------------------------

@pytest.mark.parametrize('shape', [(2, 40000), (40000, 2), (1, 5000), (5000, 1), (1, 960)])
def test_strips_give_no_face_in_tiles(shape):
    with TiledDetector(tile=MIN_TILE) as tiled:  # (2, 40000) was an OpenCV resize assertion
        assert tiled.detect(np.zeros((*shape, 3), np.uint8)) == []


def test_tiles_smaller_than_the_floor_are_refused():
    assert MIN_TILE == 384
    for tile in (128, 383):  # 128 turned the astronaut's one face into nine
        assert check_tile(tile) == 'use 0 (off) or at least 384 px'
        with pytest.raises(ValueError, match='at least 384'):
            TiledDetector(tile=tile)
    assert check_tile(0) is None and check_tile(384) is None


def test_the_smallest_tile_leaves_a_512_px_photo_whole(astronaut_bgr):
    rgb = astronaut_bgr[:, :, ::-1].copy()  # with 128-px tiles: 9 faces, 8 of them false
    with FaceDetector() as plain, TiledDetector(tile=MIN_TILE) as tiled:
        assert len(tiled.detect(rgb)) == 1 and tiled.detect(rgb) == plain.detect(rgb)


def test_small_frames_give_the_plain_detector_result(astronaut_bgr):
    rgb = astronaut_bgr[:, :, ::-1].copy()
    with FaceDetector() as plain, TiledDetector() as tiled:
        assert tiled.detect(rgb) == plain.detect(rgb)
        assert tiled.detect(np.full((1080, 1920, 3), 128, np.uint8)) == []


def match(truth, faces, min_iou=0.4):
    """(faces found, boxes duplicating a found face, other boxes) for truth boxes."""
    def overlap(a, b):
        dx = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
        dy = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
        inter = max(dx, 0) * max(dy, 0)
        return inter / (a[2] * a[3] + b[2] * b[3] - inter), inter / min(a[2] * a[3], b[2] * b[3])

    boxes = [f.box for f in faces]
    pairs = sorted(((overlap(t, b)[0], i, j) for i, t in enumerate(truth)
                    for j, b in enumerate(boxes)), reverse=True)
    found, used = set(), set()
    for iou, i, j in pairs:
        if iou >= min_iou and i not in found and j not in used:
            found.add(i)
            used.add(j)
    rest = [b for j, b in enumerate(boxes) if j not in used]
    dups = sum(any(overlap(truth[i], b)[1] > 0.5 for i in found) for b in rest)
    return len(found), dups, len(rest) - dups


@pytest.fixture(scope='module')
def composed():
    """{(width, height): (rgb, truth boxes)}: truth is the plain detector's faces on each photo
    at full size, scaled and shifted into the canvas."""
    if not MEDIA.is_dir():
        pytest.skip('../shared/media is not present')
    photos = {i: cv2.imread(str(MEDIA / f'faceapi_bbt{i}.jpg'))[:, :, ::-1].copy()
              for i in PHOTO_FACES}
    with FaceDetector() as detector:
        boxes = {i: [f.box for f in detector.detect(p)] for i, p in photos.items()}
    assert {i: len(b) for i, b in boxes.items()} == PHOTO_FACES
    frames = {}
    for (width, height), rows in LAYOUTS.items():
        canvas, truth, y = np.full((height, width, 3), 128, np.uint8), [], 0
        for row in rows:
            x = row_height = 0
            for i, s in row:
                h, w = (round(n * s) for n in photos[i].shape[:2])
                canvas[y:y + h, x:x + w] = cv2.resize(photos[i], (w, h), interpolation=(
                    cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR))
                truth += [(x + bx * s, y + by * s, bw * s, bh * s) for bx, by, bw, bh in boxes[i]]
                x, row_height = x + w + GAP, max(row_height, h)
            y += row_height + GAP
        assert x - GAP <= width and y - GAP <= height
        frames[width, height] = canvas, truth
    return frames


@pytest.mark.parametrize('size', list(LAYOUTS))
def test_tiles_find_the_faces_the_whole_frame_misses(composed, size):
    rgb, truth = composed[size]
    with FaceDetector() as plain, TiledDetector() as tiled:
        plain_found, _, _ = match(truth, plain.detect(rgb))
        faces = tiled.detect(rgb)
    found, dups, false = match(truth, faces)
    # Measured: plain 7/23 (1080p), 1/64 (4K); tiled 23/23 and 64/64, 0 and 5 false boxes.
    assert plain_found <= 0.4 * len(truth)
    assert found >= 0.9 * len(truth)
    assert dups == 0 and false <= 0.1 * len(truth)
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)
    for f in faces:  # keypoints mapped back from the tiles: the eyes lie in the box
        assert all(f.x <= kx <= f.x + f.width and f.y <= ky <= f.y + f.height
                   for kx, ky in f.keypoints[:2])


def test_max_faces_applies_after_merging(composed):
    rgb, _ = composed[1920, 1080]
    with TiledDetector() as tiled:
        every = tiled.detect(rgb)
    with TiledDetector(max_faces=5) as tiled:
        assert tiled.detect(rgb) == every[:5]
    with TiledDetector(min_side=4000) as whole, FaceDetector() as plain:  # below min_side
        assert whole.detect(rgb) == plain.detect(rgb)


def test_frames_over_4k_are_tiled_at_4k(composed):
    rgb, truth = composed[3840, 2160]
    big = cv2.resize(rgb, (7680, 4320), interpolation=cv2.INTER_LINEAR)
    with TiledDetector() as tiled:
        faces = tiled.detect(big)
    found, dups, false = match([tuple(2 * v for v in t) for t in truth], faces)
    assert TILED_MAX_SIDE == 3840
    assert found >= 0.9 * len(truth) and dups == 0 and false <= 0.1 * len(truth)
    assert all(f.x + f.width <= 7680 and f.y + f.height <= 4320 for f in faces)
