"""The robustness report: each perturbation does what it says, and the report measures it."""
import json

import numpy as np
import pytest
from conftest import DATA

from fer_ros.learning.data import load_dataset
from fer_ros.learning.evaluate import main as evaluate_main
from fer_ros.learning.robustness import PERTURBATIONS, affine, down_up, jpeg, tone
from fer_ros.learning.scoring import evaluate
from fer_ros.models import load_ensemble


def _dot(x, y, side=48):
    image = np.zeros((side, side), np.uint8)
    image[y - 1:y + 2, x - 1:x + 2] = 255
    return image


def _centre(image):
    ys, xs = np.nonzero(image > 100)
    return xs.mean(), ys.mean()


def test_geometric_perturbations_move_the_crop_window():
    # the window moves right by 10 % of the side: the content moves left by 4.8 px
    assert _centre(affine(_dot(24, 24), shift=(0.1, 0))) == pytest.approx((24 - 4.8, 24), abs=0.6)
    assert _centre(affine(_dot(24, 24), shift=(0, -0.1))) == pytest.approx((24, 28.8), abs=0.6)
    # a window 1.15x as large: a point 12 px from the centre comes 12 / 1.15 px from it
    x, _ = _centre(affine(_dot(35, 23), scale=1.15))
    assert x - 23.5 == pytest.approx(11.5 / 1.15, abs=0.6)
    # +20 degrees (OpenCV: counter-clockwise on screen) about the centre
    x, y = _centre(affine(_dot(35, 23), degrees=20))
    assert np.degrees(np.arctan2(23.5 - y, x - 23.5)) == pytest.approx(20 + 2.5, abs=4)
    flat = np.full((48, 48), 77, np.uint8)  # borders repeat: no black corners
    assert (affine(flat, shift=(0.1, 0.1), degrees=20) == 77).all()


def test_photometric_perturbations():
    rng = np.random.default_rng(0)
    face = rng.integers(40, 220, (48, 48)).astype(np.uint8)
    assert tone(face, gain=0.35).mean() == pytest.approx(face.mean() * 0.35, rel=0.02)
    low = tone(face, contrast=0.4)
    assert low.std() == pytest.approx(face.std() * 0.4, rel=0.02)
    assert low.mean() == pytest.approx(face.mean(), abs=1)
    for changed in (jpeg(face, 30), down_up(face, 24)):
        assert changed.shape == face.shape and changed.dtype == np.uint8
        assert 2 < np.abs(changed.astype(int) - face).mean() < 60
    assert all(f(face).shape == face.shape for v in PERTURBATIONS.values() for f in v.values())


@pytest.mark.skipif(not (DATA / 'fer2013' / 'public_test.npz').exists(),
                    reason='../shared is not present')
def test_report_on_public_test_faces(tmp_path, capsys):
    data = load_dataset(DATA / 'fer2013' / 'public_test.npz').subset(slice(0, 300))
    np.savez(tmp_path / 'val.npz', images=data.images, labels=data.labels,
             classes=np.array(data.class_names))
    evaluate_main(['fer_cnn_fer2013_ft', str(tmp_path / 'val.npz'), '--robustness',
                   '--out', str(tmp_path / 'r')])
    report = json.loads((tmp_path / 'r' / 'robustness.json').read_text())
    assert report['base'] == pytest.approx(
        evaluate(load_ensemble('fer_cnn_fer2013_ft'), data)['accuracy'])
    assert [r['perturbation'] for r in report['rows']] == [p for p in PERTURBATIONS if p != 'none']
    for row in report['rows']:
        drops = [report['base'] - a for a in row['variants'].values()]
        assert row['worst_drop'] == pytest.approx(max(drops))
        assert row['mean_drop'] == pytest.approx(np.mean(drops))
    by_name = {r['perturbation']: r for r in report['rows']}
    assert len(by_name['shift 10%']['variants']) == 4
    assert by_name['downscale 24 px']['worst_drop'] > 0.02  # a real loss of detail, measured
    assert (tmp_path / 'r' / 'robustness.png').stat().st_size > 1000
    assert '| rotation 20° |' in capsys.readouterr().out
