"""fer_node's model, detector_model and device parameters can be set by anyone on the ROS
graph: no value, file content or device string may take the process down or raise anything
but the project's own errors, and no error may tell whether an arbitrary path exists."""
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch

from fer_ros.models import (InputSpec, ModelError, ModelSpec, list_ensembles, list_models,
                            load_ensemble, save_checkpoint)
from fer_ros.models.cnn import FerCNN
from fer_ros.perception.classifier import DeviceError, ExpressionClassifier, resolve_device
from fer_ros.perception.detection import FaceDetector

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- checkpoints (model)

def _checkpoint_dict(tmp_path: Path) -> dict:
    """What torch.load gives for a small valid checkpoint."""
    spec = ModelSpec(name='tiny', architecture='fer_cnn',
                     input=InputSpec(size=48, channels=1, mean=0.5, std=0.5, crop_margin=0.05),
                     class_names=('neutral', 'happy', 'sad'), weights='test', license='MIT',
                     arch_kwargs={'widths': [4, 8]})
    save_checkpoint(tmp_path / 'valid.pt', FerCNN(num_classes=3, widths=(4, 8)), spec)
    return torch.load(tmp_path / 'valid.pt', weights_only=True)


def _set(path: str, value):
    """A change to a checkpoint dict: set the value at a dotted path ('spec.input.size')."""
    *parents, last = path.split('.')

    def change(data: dict) -> None:
        for key in parents:
            data = data[key]
        data[last] = value
    return change


def _drop(path: str):
    *parents, last = path.split('.')

    def change(data: dict) -> None:
        for key in parents:
            data = data[key]
        del data[last]
    return change


def _tensor(key: str, value):
    def change(data: dict) -> None:
        data['state_dict'][key] = value
    return change


# Each is accepted by torch.load(weights_only=True); (change, words the message must have).
CRAFTED = {
    'spec not a dict': (_set('spec', ['fer_cnn']), 'spec'),
    'no spec': (_drop('spec'), 'spec'),
    'architecture a list': (_set('spec.architecture', ['fer_cnn']), 'architecture'),
    'unknown architecture': (_set('spec.architecture', 'vit_huge'), 'architecture'),
    'class_names a string': (_set('spec.class_names', 'happy'), 'class_names'),
    'class_names an int': (_set('spec.class_names', 7), 'class_names'),
    'class_names empty': (_set('spec.class_names', ()), 'class_names'),
    'class_names repeated': (_set('spec.class_names', ('happy', 'happy', 'sad')), 'class_names'),
    'class_names unknown': (_set('spec.class_names', ('happy', 'smug', 'sad')), 'smug'),
    'input missing a key': (_drop('spec.input.std'), 'input'),
    'input with an extra key': (_set('spec.input.gamma', 2.2), 'input'),
    'input a list': (_set('spec.input', [48, 1]), 'input'),
    'input size negative': (_set('spec.input.size', -48), 'size'),
    'input size huge': (_set('spec.input.size', 10 ** 9), 'size'),
    'input size a string': (_set('spec.input.size', '48'), 'size'),
    'input channels 2': (_set('spec.input.channels', 2), 'channels'),
    'input std zero': (_set('spec.input.std', 0.0), 'std'),
    'input mean nan': (_set('spec.input.mean', float('nan')), 'mean'),
    'input std a huge int': (_set('spec.input.std', 10 ** 400), 'std'),
    'input crop_margin inf': (_set('spec.input.crop_margin', float('inf')), 'crop_margin'),
    'name an int': (_set('spec.name', 42), 'name'),
    'name with a newline': (_set('spec.name', 'tiny\n[FATAL] forged'), 'name'),
    'metrics a list': (_set('spec.metrics', [1, 2]), 'metrics'),
    'arch_kwargs a list': (_set('spec.arch_kwargs', [4, 8]), 'arch_kwargs'),
    'arch_kwargs unknown key': (_set('spec.arch_kwargs', {'depth': 3}), 'depth'),
    'arch_kwargs widths a string': (_set('spec.arch_kwargs', {'widths': 'wide'}), 'widths'),
    'arch_kwargs widths zero': (_set('spec.arch_kwargs', {'widths': [0, 8]}), 'widths'),
    'arch_kwargs widths huge': (_set('spec.arch_kwargs', {'widths': [10 ** 12]}), 'widths'),
    'arch_kwargs dropout 2': (_set('spec.arch_kwargs', {'dropout': 2.0}), 'dropout'),
    'too many parameters': (_set('spec.arch_kwargs', {'widths': [2048] * 4}), 'parameters'),
    'no state_dict': (_drop('state_dict'), 'state_dict'),
    'state_dict a list': (_set('state_dict', [torch.zeros(3)]), 'state_dict'),
    'state_dict int key': (_tensor(7, torch.zeros(3)), 'state_dict'),
    'weight not a tensor': (_tensor('classifier.bias', 0.5), 'classifier.bias'),
    'weight wrong shape': (_tensor('classifier.bias', torch.zeros(5)), 'classifier.bias'),
    'weight huge view': (_tensor('classifier.bias', torch.zeros(1).expand(10 ** 12)),
                         'classifier.bias'),
    'weight complex': (_tensor('classifier.bias', torch.zeros(3, dtype=torch.complex64)),
                       'classifier.bias'),
    'weight int': (_tensor('classifier.bias', torch.zeros(3, dtype=torch.int64)),
                   'classifier.bias'),
    'counter float': (_tensor('body.1.num_batches_tracked', torch.tensor(1.5)),
                      'num_batches_tracked'),
    'weight missing': (lambda d: d['state_dict'].pop('classifier.bias'), 'classifier.bias'),
    'weight unexpected': (_tensor('extra.weight', torch.zeros(3)), 'extra.weight'),
}


@pytest.mark.parametrize('case', CRAFTED)
def test_a_crafted_checkpoint_is_refused_with_a_reason(tmp_path, case):
    change, words = CRAFTED[case]
    data = _checkpoint_dict(tmp_path)
    change(data)
    path = tmp_path / 'crafted.pt'
    torch.save(data, path)
    torch.load(path, weights_only=True)  # torch itself accepts the file
    with pytest.raises(ModelError) as error:
        ExpressionClassifier(str(path), 'cpu')
    message = str(error.value)
    assert 'bad fer_ros checkpoint' in message and words in message, message
    assert '\n' not in message


def test_the_valid_crafting_base_loads(tmp_path):
    _checkpoint_dict(tmp_path)
    assert ExpressionClassifier(str(tmp_path / 'valid.pt'), 'cpu').class_names == (
        'neutral', 'happy', 'sad')


def _unknown_message(name: str) -> str:
    with pytest.raises(ModelError) as error:
        ExpressionClassifier(name, 'cpu')
    return str(error.value).replace(repr(name), 'NAME')


def test_unknown_model_names_list_the_models_and_the_ensembles():
    message = _unknown_message('no_such_model')
    assert 'not a registered model nor a readable fer_ros checkpoint' in message
    for name in [s.name for s in list_models()] + [e.name for e in list_ensembles()]:
        assert name in message


def _fifo(tmp_path: Path) -> Path:
    os.mkfifo(tmp_path / 'fifo.pt')  # opening it for reading would block
    return tmp_path / 'fifo.pt'


def _file(name: str, content: bytes):
    def make(tmp_path: Path) -> Path:
        (tmp_path / name).write_bytes(content)
        return tmp_path / name
    return make


def _oversized(tmp_path: Path) -> Path:
    path = tmp_path / 'huge.pt'
    with open(path, 'wb') as f:
        f.write(b'PK\x03\x04')
        f.truncate(257 << 20)  # sparse: no disk used
    return path


def _zip_bomb(tmp_path: Path) -> Path:
    """A real torch checkpoint whose 260 MB tensor record is deflated to about 1 MB:
    torch.load would inflate it in memory."""
    stored, path = tmp_path / 'stored.pt', tmp_path / 'bomb.pt'
    data = _checkpoint_dict(tmp_path)
    data['state_dict']['classifier.bias'] = torch.empty(260 << 20, dtype=torch.uint8)  # lazy
    torch.save(data, stored)
    with zipfile.ZipFile(stored) as src, \
            zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED, compresslevel=1) as dst:
        for info in src.infolist():
            with src.open(info) as a, dst.open(info.filename, 'w', force_zip64=True) as b:
                shutil.copyfileobj(a, b, 1 << 20)
    stored.unlink()
    assert path.stat().st_size < 5 << 20
    return path


def _many_members(tmp_path: Path) -> Path:
    path = tmp_path / 'members.pt'
    with zipfile.ZipFile(path, 'w') as archive:
        for i in range(20_000):
            archive.writestr(f'a/{i}', b'')
    return path


def _saved(tmp_path: Path, obj) -> Path:
    torch.save(obj, tmp_path / 'other.pt')
    return tmp_path / 'other.pt'


def _legacy(tmp_path: Path) -> Path:
    torch.save(_checkpoint_dict(tmp_path), tmp_path / 'legacy.pt',
               _use_new_zipfile_serialization=False)
    return tmp_path / 'legacy.pt'


UNREADABLE = {
    'missing file': lambda tmp_path: tmp_path / 'missing.pt',
    'missing, no suffix': lambda tmp_path: tmp_path / 'missing',
    'directory': lambda tmp_path: tmp_path,
    'fifo': _fifo,
    'empty file': _file('empty.pt', b''),
    'text file': _file('notes.pt', b'not a checkpoint\n'),
    'text file, no suffix': _file('notes', b'not a checkpoint\n'),
    'legacy torch format': _legacy,
    'zip, not torch': _file('a.pt', b'PK\x03\x04' + bytes(100)),
    'not a fer_ros checkpoint': lambda tmp_path: _saved(tmp_path, {'weights': torch.zeros(3)}),
    'a list': lambda tmp_path: _saved(tmp_path, [1, 2, 3]),
    'over 256 MB': _oversized,
    'zip bomb': _zip_bomb,
    '20000 zip members': _many_members,
    '/proc/version': lambda tmp_path: Path('/proc/version'),
    '/proc/self/status': lambda tmp_path: Path('/proc/self/status'),
    '/dev/zero': lambda tmp_path: Path('/dev/zero'),
}


@pytest.mark.parametrize('case', UNREADABLE)
def test_unreadable_files_all_give_the_same_message(tmp_path, case):
    path = str(UNREADABLE[case](tmp_path))
    assert _unknown_message(path) == _unknown_message(str(tmp_path / 'no_such_dir' / 'x.pt'))


def _widths_bomb(tmp_path: Path) -> Path:
    """10 kB that, built for real, would take about 1.1 GB (widths of 2048)."""
    data = _checkpoint_dict(tmp_path)
    data['spec']['arch_kwargs'] = {'widths': [2048] * 4}
    torch.save(data, tmp_path / 'widths.pt')
    return tmp_path / 'widths.pt'


@pytest.mark.parametrize('make, words', [(_widths_bomb, 'parameters'),
                                         (_zip_bomb, 'nor a readable fer_ros checkpoint')],
                         ids=['huge widths', 'zip bomb'])
def test_memory_bombs_are_refused_before_the_memory_is_taken(tmp_path, make, words):
    """Peak memory of a fresh process, over its peak after import (was 945 and 264 MB)."""
    code = textwrap.dedent('''
        import resource, sys
        from fer_ros.models import ModelError, load_model
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            load_model(sys.argv[1])
        except ModelError as exc:
            print('refused:', exc)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
        ''')
    proc = subprocess.run([sys.executable, '-c', code, str(make(tmp_path))],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, 'PYTHONPATH': str(REPO)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    *lines, growth_mb = proc.stdout.strip().splitlines()
    assert words in lines[0], proc.stdout
    assert int(growth_mb) < 50, proc.stdout


def test_a_plus_in_an_existing_file_name_tells_nothing_either(tmp_path):
    (tmp_path / 'a+b.pt').write_bytes(b'junk')
    existing = _unknown_message(str(tmp_path / 'a+b.pt'))
    missing = _unknown_message(str(tmp_path / 'c+b.pt')).replace(repr(str(tmp_path / 'c')),
                                                                 repr(str(tmp_path / 'a')))
    assert existing == missing


def test_an_ensemble_is_bounded():
    with pytest.raises(ModelError, match='at most 16'):
        load_ensemble('+'.join(['mini_xception_fer2013'] * 17))


def test_an_ensemble_shares_the_parameter_bound(monkeypatch):
    from fer_ros.models import ensemble
    monkeypatch.setattr(ensemble, 'MAX_PARAMETERS', 3_000_000)
    load_ensemble('resnet28_ferplus')
    with pytest.raises(ModelError, match='parameters'):
        load_ensemble('resnet28_ferplus+fer_cnn_ferplus')


# ---------------------------------------------------------------- device

@pytest.mark.parametrize('device', ['cuda:abc', 'cuda:-1', 'cuda:99999999999999999999',
                                    'cuda:0:1', ' cpu', 'cpu ', 'CPU', '', 'cuda:', 'mps',
                                    'cuda\n[FATAL] forged', 'x' * 10_000])
def test_malformed_device_strings_name_the_accepted_forms(device):
    with pytest.raises(DeviceError) as error:
        resolve_device(device)
    message = str(error.value)
    assert 'auto, cpu, cuda or cuda:N' in message and '\n' not in message
    assert len(message) < 300


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without a GPU')
@pytest.mark.parametrize('device', ['cuda', 'cuda:0', 'cuda:7'])
def test_well_formed_cuda_devices_without_a_gpu(device):
    with pytest.raises(DeviceError, match='no CUDA GPU'):
        resolve_device(device)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_a_cuda_index_past_the_devices():
    with pytest.raises(DeviceError, match='CUDA device'):
        resolve_device(f'cuda:{torch.cuda.device_count()}')


# ---------------------------------------------------------------- detector_model

def _tflite(input_shape: list[int], outputs: int) -> bytes:
    """A valid TFLite model that is no face detector: uint8 input, `outputs` ADD outputs."""
    import flatbuffers
    from mediapipe.tasks.metadata import schema_py_generated as tfl

    def tensor(name: str):
        t = tfl.TensorT()
        t.shape, t.type, t.buffer, t.name = input_shape, tfl.TensorType.UINT8, 0, name
        t.quantization = tfl.QuantizationParametersT()
        t.quantization.scale, t.quantization.zeroPoint = [1.0], [0]
        return t

    add = tfl.OperatorCodeT()
    add.builtinCode = add.deprecatedBuiltinCode = tfl.BuiltinOperator.ADD
    graph = tfl.SubGraphT()
    graph.tensors = [tensor('in')] + [tensor(f'out{i}') for i in range(outputs)]
    graph.inputs, graph.outputs = [0], list(range(1, outputs + 1))
    graph.operators = []
    for i in range(outputs):
        op = tfl.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = 0, [0, 0], [i + 1]
        graph.operators.append(op)
    model = tfl.ModelT()
    model.version, model.subgraphs, model.buffers = 3, [graph], [tfl.BufferT()]
    model.operatorCodes = [add]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b'TFL3')
    return bytes(builder.Output())


def _detector_message(model: str) -> str:
    with pytest.raises(FileNotFoundError) as error:
        FaceDetector(model)
    assert isinstance(error.value, ValueError)  # what fer_node reports for bad values
    return str(error.value).replace(repr(model), 'MODEL')


DETECTOR_UNREADABLE = {
    'unknown name': lambda tmp_path: 'no_such_model',
    'missing file': lambda tmp_path: tmp_path / 'missing.tflite',
    'directory': lambda tmp_path: tmp_path,
    'fifo': _fifo,
    'empty file': _file('empty.tflite', b''),
    'text file': _file('notes.tflite', b'hello\n' * 10),
    'torch checkpoint': lambda tmp_path: _saved(tmp_path, {'a': torch.zeros(3)}),
    'over 64 MB': lambda tmp_path: _big_tflite(tmp_path),
    '/proc/version': lambda tmp_path: '/proc/version',
    '/proc/self/status': lambda tmp_path: '/proc/self/status',
    '/dev/zero': lambda tmp_path: '/dev/zero',
}


def _big_tflite(tmp_path: Path) -> Path:
    path = tmp_path / 'big.tflite'
    with open(path, 'wb') as f:
        f.write(b'\x1c\x00\x00\x00TFL3')
        f.truncate(65 << 20)
    return path


@pytest.mark.parametrize('case', DETECTOR_UNREADABLE)
def test_unreadable_detector_models_all_give_the_same_message(tmp_path, case):
    message = _detector_message(str(DETECTOR_UNREADABLE[case](tmp_path)))
    assert 'full_range' in message and 'short_range' in message
    assert message == _detector_message(str(tmp_path / 'no_such_dir' / 'x.tflite'))


TFLITE_HEADER = b'\x1c\x00\x00\x00TFL3'


@pytest.mark.parametrize('content, words', [
    (TFLITE_HEADER + bytes(range(256)) * 20, 'Flatbuffer'),
    (_tflite([1, 128, 128, 3], 2), 'not a usable face detector'),
    (_tflite([1, 128, 128, 3], 1), 'not a usable face detector'),
    (_tflite([1, 64, 64], 2), 'not a usable face detector'),
    # 450 bytes that take 1 GB in MediaPipe: refused in the child process, by its memory
    # limit or by MediaPipe's own tensor checks, whichever trips first on the machine
    (_tflite([1, 8192, 8192, 3], 2), 'not a usable face detector'),
], ids=['header and junk', 'ADD, two outputs', 'ADD, one output', '3-D input',
        'memory bomb'])
def test_tflite_files_that_are_no_face_detector_are_refused(tmp_path, content, words):
    path = tmp_path / 'model.tflite'
    path.write_bytes(content)
    with pytest.raises(ValueError) as error:
        FaceDetector(str(path))
    assert words in str(error.value) and not isinstance(error.value, FileNotFoundError)


def test_a_face_detector_given_by_path_works(tmp_path, astronaut_bgr):
    from fer_ros.common.assets import asset_path
    path = tmp_path / 'short.tflite'
    shutil.copy(asset_path('face_detection_short_range.tflite'), path)
    with FaceDetector(str(path)) as detector:
        assert len(detector.detect(astronaut_bgr[:, :, ::-1].copy())) == 1
