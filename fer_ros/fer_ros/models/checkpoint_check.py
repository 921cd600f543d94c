"""Checks of checkpoint files before anything is built from them.

Anyone on the ROS graph can point fer_node's ``model`` at a file, so a checkpoint must be a
bounded torch zip archive before torch.load sees it, and everything it describes (types,
ranges, parameter count, weight names, shapes and dtypes) is checked before any weight is
allocated. Each check raises ValueError with the reason.
"""
from __future__ import annotations

import inspect
import io
import reprlib
import zipfile
from dataclasses import fields
from typing import Any, Callable, Mapping

import torch

from fer_ros.common.input_spec import InputSpec
from fer_ros.common.untrusted import read_regular_file

MAX_CHECKPOINT_BYTES = 256 << 20  # the file and its unpacked archive; shipped ones are < 5 MB
MAX_PICKLE_BYTES = 1 << 20        # the archive's data.pkl; shipped ones are < 20 kB
MAX_ZIP_MEMBERS = 10_000          # shipped ones have up to 128
MAX_PARAMETERS = 50_000_000       # weights and buffers; shipped models have up to 2.3 M
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def read_torch_zip(path: str) -> Any:
    """torch.load (weights only) of a torch zip file within the bounds above.

    Raises ValueError or OSError for other files, and whatever torch raises for a corrupt one.
    """
    blob = read_regular_file(path, MAX_CHECKPOINT_BYTES)
    if not blob.startswith(b'PK\x03\x04'):  # the legacy format allocates what it declares
        raise ValueError('not a zip file')
    # zipfile makes an object per central directory entry; every entry starts with this
    if blob.count(b'PK\x01\x02') > MAX_ZIP_MEMBERS:
        raise ValueError('too many zip members')
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        members = archive.infolist()
    if (sum(m.file_size for m in members) > MAX_CHECKPOINT_BYTES
            or any(m.filename.endswith('data.pkl') and m.file_size > MAX_PICKLE_BYTES
                   for m in members)):
        raise ValueError('the archive unpacks too large')
    return torch.load(io.BytesIO(blob), map_location='cpu', weights_only=True)


def _require(ok: bool, field: str, what: str, value: object) -> None:
    if not ok:
        raise ValueError(f'{field} must be {what}, got {reprlib.repr(value)}')


def _is_int(value: object, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def _is_number(value: object, low: float, high: float) -> bool:
    return type(value) in (int, float) and low <= value <= high  # nan compares False


def _is_str_dict(value: object) -> bool:
    return isinstance(value, dict) and all(type(k) is str for k in value)


_INPUT_FIELDS = [f.name for f in fields(InputSpec)]


def check_spec(spec: object, default_name: str) -> dict:
    """ModelSpec's keyword arguments from a checkpoint's 'spec', every field checked
    (the values of class_names and architecture are ModelSpec's to check)."""
    _require(_is_str_dict(spec), 'spec', 'a dict', spec)
    name = spec.get('name', default_name)
    _require(type(name) is str and 0 < len(name) <= 100 and name.isprintable(), 'spec.name',
             'a printable string of 1-100 characters', name)
    _require(type(spec.get('architecture')) is str, 'spec.architecture', 'a string',
             spec.get('architecture'))
    classes = spec.get('class_names')
    _require(isinstance(classes, (list, tuple)) and all(type(c) is str for c in classes)
             and 0 < len(classes) == len(set(classes)), 'spec.class_names',
             'a non-empty list of distinct strings', classes)
    given = spec.get('input')
    _require(_is_str_dict(given) and sorted(given) == sorted(_INPUT_FIELDS), 'spec.input',
             f"a dict of {', '.join(_INPUT_FIELDS)}", given)
    _require(_is_int(given['size'], 8, 512), 'spec.input.size', 'an int in 8..512',
             given['size'])
    _require(type(given['channels']) is int and given['channels'] in (1, 3),
             'spec.input.channels', '1 or 3', given['channels'])
    _require(_is_number(given['mean'], -10, 10), 'spec.input.mean', 'a number in [-10, 10]',
             given['mean'])
    _require(_is_number(given['std'], 0, 10) and given['std'] > 0, 'spec.input.std',
             'a number in (0, 10]', given['std'])
    _require(_is_number(given['crop_margin'], 0, 1), 'spec.input.crop_margin',
             'a number in [0, 1]', given['crop_margin'])
    for key in ('weights', 'license'):
        _require(type(spec.get(key, '')) is str, f'spec.{key}', 'a string', spec.get(key))
    arch_kwargs, metrics = spec.get('arch_kwargs', {}), spec.get('metrics', {})
    _require(_is_str_dict(arch_kwargs), 'spec.arch_kwargs', 'a dict', arch_kwargs)
    _require(_is_str_dict(metrics) and all(type(v) in (int, float, str) for v in metrics.values()),
             'spec.metrics', 'a dict of numbers and strings', metrics)
    return dict(name=name, architecture=spec['architecture'], input=InputSpec(**given),
                class_names=tuple(classes), weights=spec.get('weights', default_name),
                license=spec.get('license', 'unknown'), arch_kwargs=dict(arch_kwargs),
                metrics=dict(metrics))


# What each architecture keyword may be; an architecture's other keywords are refused.
_ARCH_KWARGS: dict[str, tuple[Callable[[object], bool], str]] = {
    'widths': (lambda v: isinstance(v, (list, tuple)) and 0 < len(v) <= 8
               and all(_is_int(w, 1, 4096) for w in v), 'a list of 1-8 ints in 1..4096'),
    'blocks': (lambda v: _is_int(v, 1, 8), 'an int in 1..8'),
    'dropout': (lambda v: _is_number(v, 0, 1) and v < 1, 'a number in [0, 1)'),
}


def check_arch_kwargs(architecture: Callable[..., torch.nn.Module], kwargs: dict) -> None:
    taken = sorted(set(inspect.signature(architecture).parameters) & set(_ARCH_KWARGS))
    for key, value in kwargs.items():
        if key not in taken:
            raise ValueError(f"spec.arch_kwargs: {architecture.__name__} takes no "
                             f"{reprlib.repr(key)} (it takes {', '.join(taken)})")
        ok, what = _ARCH_KWARGS[key]
        _require(ok(value), f'spec.arch_kwargs.{key}', what, value)


def check_weights(state: object, expected: Mapping[str, torch.Tensor]) -> None:
    """Refuse a model over MAX_PARAMETERS, and a state_dict that is not exactly the tensors
    of expected (the module's state_dict, built on the meta device) in float or their type."""
    count = sum(t.numel() for t in expected.values())
    if count > MAX_PARAMETERS:
        raise ValueError(f'the model has {count:,} parameters, over {MAX_PARAMETERS:,}')
    _require(_is_str_dict(state), 'state_dict', 'a dict of names to tensors', state)
    missing, unexpected = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected)
    if missing or unexpected:
        raise ValueError(f'state_dict: missing {reprlib.repr(missing)}, '
                         f'unexpected {reprlib.repr(unexpected)}')
    for key, want in expected.items():
        got = state[key]
        ok = (type(got) in (torch.Tensor, torch.nn.Parameter) and got.layout == torch.strided
              and got.device.type == 'cpu' and got.shape == want.shape
              and (got.dtype in FLOAT_DTYPES if want.is_floating_point()
                   else got.dtype == want.dtype))
        kind = 'float' if want.is_floating_point() else str(want.dtype)
        _require(ok, f'state_dict[{key!r}]', f'a {kind} tensor of shape {list(want.shape)}',
                 got if not isinstance(got, torch.Tensor) else f'{got.dtype} {list(got.shape)}')
