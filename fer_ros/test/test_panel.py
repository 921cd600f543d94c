"""The validation panel (fer_panel) and the model cards it keeps true: every shipped model's
recorded panel numbers are recomputed from ../shared and must match within 0.1 point."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import DATA

from fer_ros.learning.panel import PANEL, PREFIX, panel_metrics, run_panel
from fer_ros.learning.posed import COMPOUNDS, load_posed, node_crop, posed_rows
from fer_ros.models import DEFAULT_MODEL, list_ensembles, list_models

needs_data = pytest.mark.skipif(not all((DATA / s).is_dir() for s in PANEL),
                                reason='../shared/data (FER2013, FER+, KDEF, CFEE) not present')


SHIPPED = {s.name: s.metrics for s in [*list_models(), *list_ensembles()]}


def _recorded(name: str, backend: str = 'torch') -> dict[str, float]:
    """The panel numbers a model's card (an ensemble's registration) records for a backend."""
    suffix = '' if backend == 'torch' else f'_{backend}'
    return {k: v for k, v in SHIPPED[name].items() if k.startswith(PREFIX)
            and '_flip' not in k and ('_onnx' not in k if not suffix else suffix in k)}


def test_every_shipped_model_carries_panel_numbers():
    for name in SHIPPED:
        assert f'{PREFIX}worst_acc' in _recorded(name), f'{name}: run fer_panel --record'
    assert f'{PREFIX}worst_onnxruntime_int8_acc' in _recorded(DEFAULT_MODEL, 'onnxruntime_int8')


@needs_data
@pytest.mark.parametrize('backend', ['torch', 'onnxruntime_int8'])
def test_recorded_panel_numbers_match_the_data(backend):
    names = [name for name in SHIPPED if _recorded(name, backend)]
    assert names
    results = run_panel(names, DATA, backend=backend)
    for name in names:
        recomputed = panel_metrics(results[name], '' if backend == 'torch' else f'_{backend}')
        for key, value in _recorded(name, backend).items():
            assert key in recomputed, (name, key)
            assert abs(recomputed[key] - value) <= 0.001, (name, key, value, recomputed[key])


@needs_data
def test_posed_crops_are_the_node_cut_of_each_face():
    data = load_posed(DATA / 'cfee', 'val')
    rows = posed_rows(DATA / 'cfee', 'val')
    assert len(data) == len(rows) and data.images.shape[1:] == (48, 48)
    assert set(data.groups) == {f"cfee/{r['identity']}" for r in rows}  # grouped by person
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


def test_the_model_page_table_is_the_generated_one():
    from fer_ros.learning.model_table import CARDS, with_table
    page = Path(__file__).resolve().parents[2] / 'docs' / 'models.md'
    text = page.read_text()
    assert with_table(text) == text, ('docs/models.md model table is stale: '
                                      'python -m fer_ros.learning.model_table --write docs/models.md')
    assert (page.parent / CARDS / 'fer_cnn_posed_confusion.png').is_file()  # links resolve


def test_models_are_ranked_by_the_worst_set_with_near_ties_broken_by_the_mean():
    from fer_ros.learning.panel import rank
    scores = {  # the cases met: one posed set trained on, both, neither
        'kdef_only': {'fer2013': 0.680, 'ferplus': 0.682, 'kdef': 0.884, 'cfee': 0.791},
        'both': {'fer2013': 0.675, 'ferplus': 0.692, 'kdef': 0.882, 'cfee': 0.869},
        'fer2013_only': {'fer2013': 0.690, 'ferplus': 0.692, 'kdef': 0.606, 'cfee': 0.693},
        'weak': {'fer2013': 0.652, 'ferplus': 0.645, 'kdef': 0.551, 'cfee': 0.600},
    }
    assert rank(scores) == ['both', 'kdef_only', 'fer2013_only', 'weak']
    scores['both']['fer2013'] = 0.669  # over a point below the best worst set: out of the tie
    assert rank(scores) == ['kdef_only', 'both', 'fer2013_only', 'weak']
