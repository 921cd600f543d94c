import cv2
import numpy as np
import pytest
import torch
from conftest import MEDIA, needs_shared

from fer_ros.models import (DEFAULT_MODEL, ModelError, get_spec, list_ensembles, list_models,
                            load_model)
from fer_ros.perception.classifier import DeviceError, ExpressionClassifier, resolve_device
from fer_ros.perception.detection import FaceDetector
from fer_ros.perception.preprocess import face_batch

POSED = {'angry': 'angry', 'disgusted': 'disgust', 'fearful': 'fear', 'happy': 'happy',
         'neutral': 'neutral', 'sad': 'sad', 'surprised': 'surprise'}
ASTRONAUT_BOX = (173, 67, 103, 103)  # MediaPipe full-range box of the face
# Probabilities of the PyTorch port for that box, recorded once; Keras order of classes.
REFERENCE = {'angry': 0.000187, 'disgust': 0.0, 'fear': 2.4e-05, 'happy': 0.999178,
             'sad': 3e-06, 'surprise': 8.4e-05, 'neutral': 0.000525}


@pytest.fixture(scope='module')
def classifier():
    return ExpressionClassifier('mini_xception_fer2013', 'cpu')


def test_parity_with_recorded_reference(classifier, astronaut_bgr):
    probs = classifier.predict(astronaut_bgr, [ASTRONAUT_BOX])[0]
    assert classifier.class_names == tuple(REFERENCE)
    np.testing.assert_allclose(probs, list(REFERENCE.values()), atol=1e-4)
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert classifier.class_names[int(np.argmax(probs))] == 'happy'


def test_batch_equals_single_calls(classifier, astronaut_bgr):
    boxes = [ASTRONAUT_BOX, (150, 50, 150, 140), (0, 0, 60, 60), (480, 480, 64, 64),
             (190, 90, 60, 60)]
    batch = classifier.predict(astronaut_bgr, boxes)
    singles = np.concatenate([classifier.predict(astronaut_bgr, [b]) for b in boxes])
    assert batch.shape == (5, 7)
    np.testing.assert_allclose(batch, singles, atol=1e-5)


def test_no_faces_gives_empty_result(classifier, astronaut_bgr):
    assert classifier.predict(astronaut_bgr, []).shape == (0, 7)


def test_crops_past_the_border_are_padded(astronaut_bgr):
    spec = get_spec('mini_xception_fer2013').input
    batch = face_batch(astronaut_bgr, [(-30, -30, 80, 80), (500, 500, 40, 40)], spec)
    assert batch.shape == (2, 1, 64, 64) and np.isfinite(batch).all()
    assert -1.0 <= batch.min() and batch.max() <= 1.0


@pytest.mark.parametrize('name', [s.name for s in list_models()])
def test_every_registry_entry_gives_valid_probabilities(name):
    loaded = load_model(name)
    spec = loaded.spec
    x = torch.zeros(3, spec.input.channels, spec.input.size, spec.input.size)
    with torch.inference_mode():
        probs = torch.softmax(loaded.module(x), dim=1)
    assert probs.shape == (3, len(spec.class_names))
    torch.testing.assert_close(probs.sum(1), torch.ones(3))
    assert spec.weights and spec.license


def test_ensemble_is_the_class_wise_mean_of_its_members(classifier, astronaut_bgr):
    boxes = [ASTRONAUT_BOX, (150, 50, 150, 140)]
    cnn = ExpressionClassifier('fer_cnn_fer2013_ft', 'cpu')
    both = ExpressionClassifier('fer_cnn_fer2013_ft+mini_xception_fer2013', 'cpu')
    assert both.class_names == cnn.class_names  # the first member's order
    order = [classifier.class_names.index(c) for c in cnn.class_names]
    expected = (cnn.predict(astronaut_bgr, boxes)
                + classifier.predict(astronaut_bgr, boxes)[:, order]) / 2
    np.testing.assert_allclose(both.predict(astronaut_bgr, boxes), expected, atol=1e-5)


def test_ensemble_of_fer2013_and_ferplus_models_predicts_all_eight_classes(astronaut_bgr):
    mixed = ExpressionClassifier('mini_xception_fer2013+fer_cnn_ferplus', 'cpu')
    assert set(mixed.class_names) == {*get_spec('fer_cnn_ferplus').class_names}
    probs = mixed.predict(astronaut_bgr, [ASTRONAUT_BOX])[0]
    assert probs.sum() == pytest.approx(1.0, abs=1e-5) and probs[mixed.class_names.index(
        'contempt')] > 0
    assert mixed.class_names[int(np.argmax(probs))] == 'happy'


@pytest.mark.parametrize('name', [e.name for e in list_ensembles()])
def test_registered_ensembles_load(name, astronaut_bgr):
    probs = ExpressionClassifier(name, 'cpu').predict(astronaut_bgr, [ASTRONAUT_BOX])
    assert probs.shape[0] == 1 and probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_a_registered_ensemble_can_be_extended():
    from fer_ros.models import load_ensemble
    extended = load_ensemble('ensemble_fer2013+fer_cnn_ferplus')
    registered = next(e for e in list_ensembles() if e.name == 'ensemble_fer2013')
    assert [m.spec.name for m in extended.members] == [*registered.members, 'fer_cnn_ferplus']
    assert 'contempt' in extended.class_names
    latency = sum(get_spec(m).metrics['cpu_ms_per_face_b1'] for m in registered.members)
    assert registered.metrics['cpu_ms_per_face_b1'] == pytest.approx(latency, abs=1e-3)


def test_bad_ensembles_are_clear_errors():
    with pytest.raises(ModelError, match="'model_a\\+model_b'"):
        ExpressionClassifier('fer_cnn_fer2013_ft+', 'cpu')
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        ExpressionClassifier('fer_cnn_fer2013_ft+nope', 'cpu')


def test_flip_tta_averages_the_face_and_its_mirror_image(astronaut_bgr):
    plain = ExpressionClassifier('fer_cnn_fer2013_ft', 'cpu')
    flip = ExpressionClassifier('fer_cnn_fer2013_ft', 'cpu', tta_flip=True)
    x, y, w, h = ASTRONAUT_BOX
    mirrored = np.ascontiguousarray(astronaut_bgr[:, ::-1])
    mirrored_box = (astronaut_bgr.shape[1] - x - w, y, w, h)
    expected = (plain.predict(astronaut_bgr, [ASTRONAUT_BOX])
                + plain.predict(mirrored, [mirrored_box])) / 2
    np.testing.assert_allclose(flip.predict(astronaut_bgr, [ASTRONAUT_BOX]), expected,
                               atol=1e-5)


def test_devices():
    assert resolve_device('cpu') == (torch.device('cpu'), None)
    device, warning = resolve_device('auto')
    assert device.type == ('cuda' if torch.cuda.is_available() else 'cpu')
    assert (warning is None) == torch.cuda.is_available()
    with pytest.raises(DeviceError, match='unknown device'):
        resolve_device('tpu')
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match='no CUDA GPU'):
            ExpressionClassifier('mini_xception_fer2013', 'cuda')


@needs_shared
@pytest.mark.parametrize('model', [DEFAULT_MODEL, 'mini_xception_fer2013'])
def test_posed_expression_photos(model):
    """Seven posed faces, one per FER2013 class: most must be recognised."""
    classifier = ExpressionClassifier(model, 'cpu')
    hits = []
    with FaceDetector() as detector:
        for name, label in POSED.items():
            image = cv2.imread(str(MEDIA / f'faceapi_{name}.jpg'))
            faces = detector.detect(np.ascontiguousarray(image[:, :, ::-1]))
            assert len(faces) == 1, name
            probs = classifier.predict(image, [faces[0].box])[0]
            hits.append(classifier.class_names[int(np.argmax(probs))] == label)
    assert sum(hits) >= 4 and hits[list(POSED).index('happy')]


def test_default_model_follows_the_selection_rule():
    """The default is the single model the validation panel ranks first among those whose
    int8 graph takes at most 1 ms per face on one CPU thread (a larger one may rank higher)."""
    from fer_ros.learning.panel import PANEL, rank
    from fer_ros.models import list_models
    fast = [s for s in list_models()
            if s.metrics.get('cpu_ms_per_face_b1_onnxruntime_int8', float('inf')) <= 1.0]
    scores = {s.name: {k: s.metrics[f'panel_{k}_acc'] for k in PANEL} for s in fast}
    assert DEFAULT_MODEL in scores and rank(scores)[0] == DEFAULT_MODEL
