import numpy as np
import pytest

from fer_ros.perception.tracking import FaceTracker, iou

CLASSES = ('happy', 'sad')


def probs(*rows):
    return np.array(rows, np.float32)


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0


def test_ids_follow_moving_faces_and_new_faces_get_new_ids():
    tracker = FaceTracker()
    ids, _ = tracker.update([(0, 0, 100, 100), (300, 0, 100, 100)],
                            probs([1, 0], [0, 1]), CLASSES)
    assert ids == [0, 1]
    # both move a little, listed in the other order (detection score order changes)
    ids, _ = tracker.update([(310, 5, 100, 100), (10, 5, 100, 100)],
                            probs([0, 1], [1, 0]), CLASSES)
    assert ids == [1, 0]
    ids, _ = tracker.update([(10, 5, 100, 100), (310, 5, 100, 100), (600, 0, 80, 80)],
                            probs([1, 0], [0, 1], [1, 0]), CLASSES)
    assert ids == [0, 1, 2]


def test_the_best_overlap_wins_and_a_face_is_matched_once():
    tracker = FaceTracker()
    tracker.update([(0, 0, 100, 100)], probs([1, 0]), CLASSES)
    ids, _ = tracker.update([(60, 0, 100, 100), (5, 0, 100, 100)], probs([1, 0], [1, 0]),
                            CLASSES)
    assert ids == [1, 0]


def test_a_lost_face_is_kept_for_max_missed_frames_then_forgotten():
    tracker = FaceTracker(max_missed=2)
    box = (0, 0, 100, 100)
    tracker.update([box], probs([1, 0]), CLASSES)
    for _ in range(2):
        tracker.update([], probs(), CLASSES)
    assert tracker.update([box], probs([1, 0]), CLASSES)[0] == [0]  # back within 2 frames
    for _ in range(3):
        tracker.update([], probs(), CLASSES)
    assert tracker.update([box], probs([1, 0]), CLASSES)[0] == [1]  # gone: a new id


def test_smoothing_is_an_exponential_moving_average_per_track():
    tracker = FaceTracker(smoothing=0.75)
    box = (0, 0, 100, 100)
    _, out = tracker.update([box], probs([0.0, 1.0]), CLASSES)
    np.testing.assert_allclose(out, [[0.0, 1.0]])  # first sighting: raw
    _, out = tracker.update([box], probs([1.0, 0.0]), CLASSES)
    np.testing.assert_allclose(out, [[0.25, 0.75]])
    _, out = tracker.update([box], probs([1.0, 0.0]), CLASSES)
    np.testing.assert_allclose(out, [[0.4375, 0.5625]])
    # a new face is not smoothed with anyone else's history
    _, out = tracker.update([box, (500, 0, 50, 50)], probs([1, 0], [0, 1]), CLASSES)
    np.testing.assert_allclose(out[1], [0.0, 1.0])


def test_other_classes_forget_the_tracks_but_never_reuse_ids():
    tracker = FaceTracker(smoothing=0.5)
    box = (0, 0, 100, 100)
    tracker.update([box], probs([0.0, 1.0]), CLASSES)
    ids, out = tracker.update([box], probs([1.0, 0.0]), ('sad', 'happy'))
    assert ids == [1]
    np.testing.assert_allclose(out, [[1.0, 0.0]])


def test_bad_smoothing():
    with pytest.raises(ValueError, match='smoothing'):
        FaceTracker(smoothing=1.0)
