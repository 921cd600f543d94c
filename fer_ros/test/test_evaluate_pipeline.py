"""fer_evaluate on datasets whose class names need mapping, and --pipeline on full images."""
import json

import cv2
import numpy as np
import pytest
from conftest import MEDIA, needs_shared

from fer_ros.learning.data import canonical_classes, load_dataset
from fer_ros.learning.evaluate import main as evaluate_main

POSED = ('angry', 'disgusted', 'fearful', 'happy', 'neutral', 'sad', 'surprised')


def _npz(path, classes, n=14, size=48):
    rng = np.random.default_rng(0)
    np.savez(path, images=rng.integers(0, 255, (n, size, size), dtype=np.uint8),
             labels=np.arange(n) % len(classes), classes=np.array(classes))
    return path


def test_class_names_are_mapped_by_name_or_refused():
    assert canonical_classes(['Anger', 'HAPPINESS', 'surprised', 'Neutral'], 'x') == (
        'angry', 'happy', 'surprise', 'neutral')
    with pytest.raises(ValueError, match="'bored'.*expected neutral, happy"):
        canonical_classes(['happy', 'bored'], 'x')
    with pytest.raises(ValueError, match='twice'):
        canonical_classes(['happy', 'Happiness'], 'x')


def test_a_dataset_with_unmappable_classes_is_refused_not_misreported(tmp_path, capsys):
    data = _npz(tmp_path / 'odd.npz', ['Angry', 'Happy', 'Bored'])
    with pytest.raises(ValueError, match="'Bored'"):
        load_dataset(data)
    with pytest.raises(SystemExit) as exit_:
        evaluate_main(['mini_xception_fer2013', str(data)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "cannot map class names 'Bored'" in err and 'expected neutral, happy' in err
    assert load_dataset(_npz(tmp_path / 'ok.npz', ['Anger', 'Happiness'])).class_names == (
        'angry', 'happy')


@pytest.fixture(scope='module')
def full_images(tmp_path_factory, astronaut_bgr):
    """A folder: happy/astronaut.png (a smiling face), neutral/blank.png (no face),
    sad/broken.jpg (not an image)."""
    root = tmp_path_factory.mktemp('labelled')
    for label in ('happy', 'neutral', 'sad'):
        (root / label).mkdir()
    cv2.imwrite(str(root / 'happy' / 'astronaut.png'), astronaut_bgr)
    cv2.imwrite(str(root / 'neutral' / 'blank.png'), np.full((480, 640, 3), 128, np.uint8))
    (root / 'sad' / 'broken.jpg').write_bytes(b'\xff\xd8 not a jpeg')
    return root


def _report(args, out):
    evaluate_main([*args, '--pipeline', '--out', str(out)])
    return json.loads((out / 'report.json').read_text())


def test_pipeline_counts_misses_and_scores_found_faces(full_images, tmp_path, capsys):
    report = _report(['fer_cnn_fer2013_ft', str(full_images)], tmp_path / 'r')
    assert (report['images'], report['unreadable'], report['no_face']) == (3, 1, 1)
    assert report['samples'] == 1 and report['detection_rate'] == 0.5
    by_image = {r['image']: r for r in report['per_image']}
    assert by_image['happy/astronaut.png']['predicted'] == 'happy'
    assert by_image['happy/astronaut.png']['faces'] == 1
    assert report['accuracy'] == 1.0 and report['accuracy_all'] == 0.5
    # predictions range over the model's 7 classes, not only the labels seen
    assert sorted(report['class_names']) == ['angry', 'disgust', 'fear', 'happy', 'neutral',
                                             'sad', 'surprise']
    assert report['ms_per_image']['detect'] > 0
    out = capsys.readouterr().out
    assert 'no face found: 1' in out
    assert (tmp_path / 'r' / 'confusion.png').is_file()


def test_csv_and_npz_of_full_images_give_the_folder_s_result(full_images, tmp_path,
                                                               astronaut_bgr):
    (tmp_path / 'labels.csv').write_text(
        'path,label\n'
        f"{full_images / 'happy' / 'astronaut.png'},Happiness\n"
        f"{full_images / 'neutral' / 'blank.png'},neutral\n")
    from_csv = _report(['fer_cnn_fer2013_ft', str(tmp_path / 'labels.csv')], tmp_path / 'c')
    rgb = astronaut_bgr[:, :, ::-1]
    np.savez(tmp_path / 'full.npz', images=np.stack([rgb, np.full_like(rgb, 128)]),
             labels=np.array([1, 0]), classes=np.array(['neutral', 'happy']))
    from_npz = _report(['fer_cnn_fer2013_ft', str(tmp_path / 'full.npz')], tmp_path / 'n')
    for report in (from_csv, from_npz):
        assert (report['images'], report['no_face'], report['accuracy']) == (2, 1, 1.0)
        assert [r.get('predicted') for r in report['per_image']] == ['happy', None]
    (tmp_path / 'bad.csv').write_text('path,label\na.png,bored\n')
    with pytest.raises(SystemExit):
        evaluate_main(['fer_cnn_fer2013_ft', str(tmp_path / 'bad.csv'), '--pipeline'])


def test_a_folder_without_labels_is_refused(tmp_path, astronaut_bgr, capsys):
    cv2.imwrite(str(tmp_path / 'person.png'), astronaut_bgr)
    with pytest.raises(SystemExit):
        evaluate_main(['fer_cnn_fer2013_ft', str(tmp_path), '--pipeline'])
    assert 'no class name in the sub-folder or file name' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate_main(['fer_cnn_fer2013_ft', str(tmp_path)])
    assert 'use --pipeline' in capsys.readouterr().err


@needs_shared
def test_posed_photos_through_the_pipeline(tmp_path):
    (tmp_path / 'posed').mkdir()
    for name in POSED:
        (tmp_path / 'posed' / f'faceapi_{name}.jpg').symlink_to(MEDIA / f'faceapi_{name}.jpg')
    report = _report(['fer_cnn_fer2013_ft', str(tmp_path / 'posed')], tmp_path / 'r')
    assert report['detection_rate'] == 1.0 and report['several_faces'] == 0
    assert {r['label'] for r in report['per_image']} == {
        'angry', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise'}
    assert report['accuracy'] >= 4 / 7  # chance is 1/7


def test_pipeline_detects_with_the_node_s_tiles(tmp_path, astronaut_bgr):
    frame = np.full((1080, 1920, 3), 128, np.uint8)  # one ~45 px face in a 1080p frame
    frame[500:705, 900:1105] = cv2.resize(astronaut_bgr, (205, 205), interpolation=cv2.INTER_AREA)
    (tmp_path / 'happy').mkdir()
    cv2.imwrite(str(tmp_path / 'happy' / 'far.png'), frame)
    whole = _report(['fer_cnn_fer2013_ft', str(tmp_path / 'happy')], tmp_path / 'w')
    tiled = _report(['fer_cnn_fer2013_ft', str(tmp_path / 'happy'), '--detection-tile', '640'],
                    tmp_path / 't')
    assert (whole['no_face'], tiled['no_face']) == (1, 0)
