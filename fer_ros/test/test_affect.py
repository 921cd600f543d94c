"""Valence and arousal derived from expression probabilities."""
import cv2
import numpy as np
import pytest
from conftest import MEDIA, needs_shared

from fer_ros.perception.affect import CIRCUMPLEX, valence_arousal


def test_a_certain_class_sits_at_its_coordinates_and_mixtures_between():
    names = ('neutral', 'happy', 'sad')
    out = valence_arousal(np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 0.5, 0.5]]), names)
    np.testing.assert_allclose(out[0], CIRCUMPLEX['happy'])
    np.testing.assert_allclose(out[1], CIRCUMPLEX['sad'])
    np.testing.assert_allclose(out[2], (0, 0))
    np.testing.assert_allclose(out[3], np.mean([CIRCUMPLEX['happy'], CIRCUMPLEX['sad']], 0),
                               rtol=1e-6)


def test_any_label_set_and_unnormalised_rows():
    out = valence_arousal(np.array([[2.0, 2.0], [0.0, 0.0]]), ('happy', 'unknown'))
    np.testing.assert_allclose(out, [np.array(CIRCUMPLEX['happy']) / 2, (0, 0)], rtol=1e-6)
    assert valence_arousal(np.zeros((0, 7)), tuple(CIRCUMPLEX)[:7]).shape == (0, 2)


def test_the_circumplex_has_the_published_signs():
    assert all(-1 <= v <= 1 and -1 <= a <= 1 for v, a in CIRCUMPLEX.values())
    assert CIRCUMPLEX['happy'][0] > 0 and CIRCUMPLEX['surprise'][0] > 0
    assert all(CIRCUMPLEX[c][0] < 0 for c in ('sad', 'angry', 'disgust', 'fear', 'contempt'))
    assert all(CIRCUMPLEX[c][1] > 0 for c in ('happy', 'surprise', 'angry', 'fear'))
    assert CIRCUMPLEX['sad'][1] < 0


@pytest.fixture(scope='module')
def posed():
    """Valence and arousal of each posed photo's face, through the node's pipeline."""
    from fer_ros.perception.classifier import ExpressionClassifier
    from fer_ros.perception.detection import FaceDetector
    from fer_ros.perception.pipeline import FerPipeline
    out = {}
    with FaceDetector() as detector:
        pipeline = FerPipeline(detector, ExpressionClassifier(device='cpu'))
        for name in ('happy', 'sad', 'angry', 'surprised', 'fearful', 'neutral'):
            result = pipeline.process(cv2.imread(str(MEDIA / f'faceapi_{name}.jpg')))
            (face,) = result.faces
            out[name] = (face.valence, face.arousal)
    return out


@needs_shared
def test_posed_photos_have_the_expected_signs(posed):
    assert posed['happy'][0] > 0
    assert posed['sad'][0] < 0 and posed['angry'][0] < 0
    for name in ('surprised', 'fearful', 'angry'):
        assert posed[name][1] > posed['neutral'][1], name
