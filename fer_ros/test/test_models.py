from pathlib import Path

import pytest
import torch

from fer_ros.models import (InputSpec, MiniXception, ModelError, ModelSpec, get_spec,
                            load_checkpoint, load_model, save_checkpoint)


def _spec(**kw):
    fields = dict(name='tiny', architecture='mini_xception',
                  input=InputSpec(size=48, channels=1, mean=0.5, std=0.5, crop_margin=0.1),
                  class_names=('neutral', 'happy', 'sad'), weights='test', license='MIT')
    fields.update(kw)
    return ModelSpec(**fields)


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    module = MiniXception(num_classes=3).eval()
    path = tmp_path / 'tiny.pt'
    save_checkpoint(path, module, _spec())
    loaded = load_model(str(path))
    assert loaded.spec.class_names == ('neutral', 'happy', 'sad')
    assert loaded.spec.input.size == 48
    x = torch.randn(2, 1, 48, 48)
    torch.testing.assert_close(loaded.module(x), module(x), rtol=1e-2, atol=1e-2)
    assert all(p.dtype == torch.float32 for p in loaded.module.parameters())


def test_checkpoint_stores_float16_where_it_fits(tmp_path):
    module = MiniXception(num_classes=3)
    with torch.no_grad():
        module.stem[1].running_var.fill_(1e6)  # beyond float16's range: kept as float32
    save_checkpoint(tmp_path / 'tiny.pt', module, _spec())
    state = torch.load(tmp_path / 'tiny.pt', weights_only=True)['state_dict']
    assert state['stem.0.weight'].dtype == torch.float16
    assert state['stem.1.running_var'].dtype == torch.float32
    assert state['stem.1.num_batches_tracked'].dtype == torch.int64
    loaded = load_model(str(tmp_path / 'tiny.pt')).module
    assert torch.equal(loaded.stem[1].running_var, module.stem[1].running_var)


def test_bad_names_and_files(tmp_path):
    with pytest.raises(ModelError, match="unknown model 'no_such_model'"):
        load_model('no_such_model')
    junk = tmp_path / 'junk.pt'
    junk.write_bytes(b'not a checkpoint')
    for path in (tmp_path / 'missing.pt', junk):  # the same error: no hint that a file exists
        with pytest.raises(ModelError, match='nor a readable fer_ros checkpoint'):
            load_model(str(path))
    with pytest.raises(ModelError, match='unknown class names'):
        _spec(class_names=('happiness',))


WEIGHTS = sorted((Path(__file__).resolve().parents[1] / 'fer_ros' / 'weights').glob('*.pt'))


@pytest.mark.parametrize('path', WEIGHTS, ids=[p.stem for p in WEIGHTS])
def test_every_shipped_checkpoint_passes_the_checks_and_loads(path):
    loaded = load_checkpoint(path)
    registered = load_model(loaded.spec.name)
    assert loaded.spec == registered.spec == get_spec(path.stem)
    for (key, a), b in zip(loaded.module.state_dict().items(),
                           registered.module.state_dict().values()):
        assert torch.equal(a, b), key
