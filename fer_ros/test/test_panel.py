"""The validation panel (fer_panel) and the model cards it keeps true: every shipped model's
recorded panel numbers are recomputed from ../shared and must match within 0.1 point."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA

from fer_ros.learning.panel import PANEL, PREFIX, panel_metrics, run_panel
from fer_ros.learning.posed import COMPOUNDS, load_posed, node_crop, posed_rows
from fer_ros.models import DEFAULT_MODEL, get_spec, list_models

needs_data = pytest.mark.skipif(not all((DATA / s).is_dir() for s in PANEL),
                                reason='../shared/data (FER2013, FER+, KDEF, CFEE) not present')


def _recorded(name: str) -> dict[str, float]:
    return {k: v for k, v in get_spec(name).metrics.items()
            if k.startswith(PREFIX) and '_flip' not in k and '_onnx' not in k}


def test_the_default_and_every_posed_model_carries_panel_numbers():
    assert f'{PREFIX}worst_acc' in _recorded(DEFAULT_MODEL)
    for spec in list_models():
        if 'posed faces' in spec.weights:
            assert f'{PREFIX}worst_acc' in _recorded(spec.name), spec.name


@needs_data
def test_recorded_panel_numbers_match_the_data():
    names = [s.name for s in list_models() if _recorded(s.name)]
    results = run_panel(names, DATA)
    for name in names:
        recomputed = panel_metrics(results[name])
        for key, value in _recorded(name).items():
            assert key in recomputed, (name, key)
            assert abs(recomputed[key] - value) <= 0.001, (name, key, value, recomputed[key])


@needs_data
def test_posed_crops_are_the_node_cut_of_each_face():
    data = load_posed(DATA / 'cfee', 'val')
    rows = posed_rows(DATA / 'cfee', 'val')
    assert len(data) == len(rows) and data.images.shape[1:] == (48, 48)
    assert len(set(data.groups)) == 46  # val people, by identity
    import cv2
    first = cv2.imread(str(DATA / 'cfee' / rows[0]['path']))
    np.testing.assert_array_equal(data.images[0], node_crop(first, rows[0], 48))
    train = {g for g in load_posed(DATA / 'cfee', 'train').groups}
    assert not train & set(data.groups)


@needs_data
def test_compound_expressions_split_their_mass_between_two_classes():
    data = load_posed(DATA / 'cfee', 'train', compound=True)
    rows = posed_rows(DATA / 'cfee', 'train', compound=True)
    names = data.class_names
    for row, target in zip(rows, data.targets):
        if row['label'] in COMPOUNDS:
            a, b = COMPOUNDS[row['label']]
            assert target[names.index(a)] == target[names.index(b)] == 0.5
        else:
            assert target.max() == 1.0
    assert {r['label'] for r in rows} & {'appalled', 'hatred', 'awed'} == set()
