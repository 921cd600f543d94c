"""Losses, datasets, the trainer, resume, evaluation; small synthetic data, seconds each."""
import json
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import DATA

from fer_ros.learning.config import TrainConfig
from fer_ros.learning.data import load_dataset
from fer_ros.learning.evaluate import main as evaluate_main
from fer_ros.learning.losses import CenterLoss, balanced_class_weights, soft_cross_entropy
from fer_ros.learning.scoring import metrics
from fer_ros.learning.trainer import Trainer
from fer_ros.models import average_by_name, list_ensembles, list_models, load_ensemble, load_model

CLASSES = ('angry', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise')


def synthetic_fer2013(path, n=280, seed=0):
    """48x48 'faces' whose class is a bright blob at a class-specific place."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(CLASSES)
    images = rng.integers(0, 60, (n, 48, 48)).astype(np.uint8)
    for img, label in zip(images, labels):
        y, x = divmod(int(label), 3)
        img[4 + 14 * y:14 + 14 * y, 4 + 14 * x:14 + 14 * x] = 230
    np.savez(path, images=images, labels=labels, classes=np.array(CLASSES),
             names=np.array([f'{i}.png' for i in range(n)]))
    return path


def test_soft_ce_equals_ce_for_one_hot_targets():
    torch.manual_seed(0)
    logits, labels = torch.randn(16, 7), torch.randint(0, 7, (16,))
    onehot = F.one_hot(labels, 7).float()
    torch.testing.assert_close(soft_cross_entropy(logits, onehot), F.cross_entropy(logits, labels))
    weights = torch.rand(7) + 0.5
    torch.testing.assert_close(soft_cross_entropy(logits, onehot, weights),
                               F.cross_entropy(logits, labels, weight=weights))
    torch.testing.assert_close(soft_cross_entropy(logits, onehot, label_smoothing=0.1),
                               F.cross_entropy(logits, labels, label_smoothing=0.1))


def test_balanced_weights_favour_rare_classes():
    targets = F.one_hot(torch.tensor([0] * 8 + [1] * 2), 2).float()
    weights = balanced_class_weights(targets)
    assert weights[1] == pytest.approx(4 * weights[0]) and weights.mean() == pytest.approx(1.0)


def test_center_loss_pulls_features_to_their_centers():
    torch.manual_seed(0)
    loss_fn = CenterLoss(3, 4)
    with torch.no_grad():
        loss_fn.centers.copy_(3 * torch.eye(3, 4))
    features = torch.randn(30, 4, requires_grad=True)
    targets = F.one_hot(torch.arange(30) % 3, 3).float()
    own = targets.argmax(1)
    distance = lambda: (features - loss_fn.centers[own]).norm(dim=1)  # noqa: E731
    before = distance().detach()
    opt = torch.optim.SGD([features], lr=10.0)  # the loss averages over 30 samples
    for _ in range(20):
        opt.zero_grad()
        loss_fn(features, targets).backward()
        opt.step()
    assert (distance() < 0.2 * before).all()
    assert (torch.cdist(features, loss_fn.centers).argmin(1) == own).all()
    # and the centers, trained alone, move to their class means
    opt = torch.optim.SGD(loss_fn.parameters(), lr=1.5)  # gradient = (c - mean) / 3
    fixed = torch.randn(30, 4)
    for _ in range(50):
        opt.zero_grad()
        loss_fn(fixed, targets).backward()
        opt.step()
    means = torch.stack([fixed[own == k].mean(0) for k in range(3)])
    torch.testing.assert_close(loss_fn.centers.detach(), means, atol=1e-3, rtol=0)


def test_ferplus_votes_drop_unknown_and_map_names(tmp_path):
    columns = ['neutral', 'happiness', 'surprise', 'sadness', 'anger', 'disgust', 'fear',
               'contempt', 'unknown', 'NF']
    votes = np.array([[0, 8, 2, 0, 0, 0, 0, 0, 0, 0],    # happy
                      [1, 0, 0, 0, 0, 0, 0, 0, 6, 3],    # unknown majority: dropped
                      [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],   # not a face: dropped
                      [5, 0, 0, 0, 0, 0, 0, 5, 0, 0]])   # neutral/contempt tie
    np.savez(tmp_path / 'fp.npz', images=np.zeros((4, 48, 48), np.uint8), votes=votes,
             vote_columns=np.array(columns))
    data = load_dataset(tmp_path / 'fp.npz')
    assert data.class_names == ('neutral', 'happy', 'surprise', 'sad', 'angry', 'disgust',
                                'fear', 'contempt')
    assert len(data) == 2
    np.testing.assert_allclose(data.targets[0], [0, 0.8, 0.2, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(data.targets[1], [0.5, 0, 0, 0, 0, 0, 0, 0.5])


def test_metrics_on_a_hand_made_set():
    names = ('happy', 'sad', 'neutral')
    targets = np.eye(3)[[0, 0, 1, 1, 2, 2]]
    probs = np.eye(3)[[0, 1, 1, 1, 2, 0]] * 0.8 + 0.2 / 3
    report = metrics(probs, targets, names)
    assert report['accuracy'] == pytest.approx(4 / 6)
    assert report['confusion'] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert report['per_class_recall'] == {'happy': 0.5, 'sad': 1.0, 'neutral': 0.5}
    # F1: happy 0.5, sad 0.8, neutral 2/3
    assert report['macro_f1'] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_model_classes_are_mapped_by_name():
    model = ('angry', 'happy', 'neutral')
    dataset = ('neutral', 'happy', 'contempt')
    probs = np.array([[0.5, 0.3, 0.2]])
    np.testing.assert_allclose(average_by_name([probs], [model], dataset), [[0.4, 0.6, 0.0]])


def test_ensemble_averages_each_class_over_the_members_that_have_it():
    fer2013 = ('happy', 'sad', 'neutral')
    ferplus = ('neutral', 'happy', 'sad', 'contempt')
    a = np.array([[0.6, 0.2, 0.2]])
    b = np.array([[0.1, 0.2, 0.3, 0.4]])
    # happy (0.6+0.2)/2, sad (0.2+0.3)/2, neutral (0.2+0.1)/2, contempt 0.4 (only b): sum 1.2
    expected = np.array([[0.4, 0.25, 0.15, 0.4]]) / 1.2
    out = average_by_name([a, b], [fer2013, ferplus], ('happy', 'sad', 'neutral', 'contempt'))
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def _config(path, **kw):
    return TrainConfig(train=str(path), epochs=kw.pop('epochs', 3), batch_size=32, lr=0.05,
                       arch='fer_cnn', arch_kwargs={'widths': [8, 16, 32]}, threads=1,
                       patience=10, **kw)


def test_training_lowers_loss_and_writes_a_loadable_checkpoint(tmp_path):
    data = synthetic_fer2013(tmp_path / 'train.npz')
    trainer = Trainer(_config(data, epochs=4, augment=False, center_loss_weight=0.01),
                      tmp_path / 'run')
    best = trainer.fit(progress=False)
    log = (tmp_path / 'run' / 'log.csv').read_text().splitlines()
    losses = [float(row.split(',')[3]) for row in log[1:]]
    assert len(losses) == 4 and losses[-1] < 0.7 * losses[0]
    loaded = load_model(str(best))
    assert loaded.spec.class_names == CLASSES and loaded.spec.input.size == 48
    assert loaded.spec.metrics['val_acc'] > 0.5
    assert loaded.spec.metrics['cpu_ms_per_face_b1'] > 0
    card = json.loads((tmp_path / 'run' / 'card.json').read_text())
    assert card['recipe']['center_loss_weight'] == 0.01
    assert (tmp_path / 'run' / 'confusion.png').stat().st_size > 1000
    assert (tmp_path / 'run' / 'curves.png').stat().st_size > 1000
    card_text = (tmp_path / 'run' / 'card.md').read_text()
    assert 'Model card' in card_text
    for text in (card_text, json.dumps(card), json.dumps(loaded.spec.metrics)):
        assert str(tmp_path) not in text  # datasets named as folder/file only


def test_resume_continues_from_the_same_step(tmp_path):
    data = synthetic_fer2013(tmp_path / 'train.npz')
    straight = Trainer(_config(data, epochs=3, max_batches=3), tmp_path / 'a')
    straight.fit(progress=False)

    first = Trainer(_config(data, epochs=3, max_batches=3), tmp_path / 'b')
    assert first.fit(progress=False, epochs_this_run=2) is None  # interrupted
    assert (first.epoch, first.step) == (2, 6)
    resumed = Trainer(_config(data, epochs=3, max_batches=3), tmp_path / 'b',
                      resume=tmp_path / 'b' / 'last.pt')
    assert (resumed.epoch, resumed.step) == (2, 6)
    resumed.fit(progress=False)
    assert (resumed.epoch, resumed.step) == (3, 9)
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_fer_train_exits_0_when_training_completes(tmp_path):
    """The console script's sys.exit(main()) once turned the returned best.pt into status 1."""
    import subprocess
    import sys
    from pathlib import Path
    data = synthetic_fer2013(tmp_path / 'train.npz', n=70)
    done = subprocess.run([str(Path(sys.executable).parent / 'fer_train'), str(data), '--out',
                           str(tmp_path / 'run'), '--epochs', '1', '--max-batches', '1',
                           '--no-progress'], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / 'run' / 'best.pt').is_file() and 'Model card' in done.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the error without a GPU')
def test_training_on_a_missing_gpu_is_a_clear_error(tmp_path, capsys):
    from fer_ros.learning.train import main as train_main
    from fer_ros.perception.classifier import DeviceError
    data = synthetic_fer2013(tmp_path / 'train.npz')
    with pytest.raises(DeviceError, match='no CUDA GPU'):
        Trainer(_config(data, device='cuda'), tmp_path / 'run')
    with pytest.raises(SystemExit):
        train_main([str(data), '--out', str(tmp_path / 'run'), '--device', 'cuda'])
    assert 'no CUDA GPU' in capsys.readouterr().err
    assert Trainer(_config(data, device='auto'), tmp_path / 'auto').device.type == 'cpu'
    assert 'running on the CPU' in capsys.readouterr().out


DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason='needs a CUDA GPU'))]


@pytest.mark.parametrize('device', DEVICES)
def test_augment_is_seeded_and_each_part_does_its_job(device):
    from fer_ros.learning.augment import Augment
    x = torch.randn(16, 1, 48, 48, generator=torch.Generator().manual_seed(1)).to(device)

    def run(augment, seed=0):
        return augment(x, torch.Generator().manual_seed(seed))
    full = Augment()
    out = run(full)
    assert out.device == x.device and out.shape == x.shape and torch.isfinite(out).all()
    torch.testing.assert_close(out, run(full))
    assert not torch.allclose(out, run(full, seed=1))
    still = Augment(max_rotation_deg=0, scale=(1, 1), max_shift=0, flip=False, brightness=0,
                    contrast=0, erase_prob=0)
    torch.testing.assert_close(run(still), x, atol=1e-4, rtol=0)  # GPU sampling rounds
    erased = run(replace(still, erase_prob=1.0)) != x
    assert erased.flatten(1).any(1).all() and not erased.all()  # a patch of each, never all


@pytest.mark.parametrize('device', DEVICES)
def test_capture_augmentation_trains_on_every_device(tmp_path, device):
    from fer_ros.learning.augment import Augment
    data = synthetic_fer2013(tmp_path / 'train.npz', n=70)
    trainer = Trainer(_config(data, epochs=1, max_batches=2, capture_augment=True,
                              device=device), tmp_path / 'run')
    assert trainer.augment == Augment.capture()
    assert trainer.fit(progress=False).is_file()
    assert 'capture_augment=True' in (tmp_path / 'run' / 'card.md').read_text()


def test_align_faces_crops_both_splits_as_the_node_does(tmp_path):
    from fer_ros.learning.framing import aligned_faces
    from fer_ros.perception.detection import FaceDetector
    data = synthetic_fer2013(tmp_path / 'train.npz', n=70)
    plain = Trainer(_config(data, epochs=1, max_batches=1), tmp_path / 'a')
    aligned = Trainer(_config(data, epochs=1, max_batches=1, align_faces=True), tmp_path / 'b')
    with FaceDetector() as detector:
        for split in ('train_set', 'val_set'):
            np.testing.assert_array_equal(
                getattr(aligned, split).images,
                aligned_faces(getattr(plain, split).images, detector))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_training_on_a_gpu_writes_a_cpu_checkpoint_and_resumes(tmp_path):
    data = synthetic_fer2013(tmp_path / 'train.npz')
    cfg = _config(data, epochs=4, augment=False, device='cuda', center_loss_weight=0.01)
    first = Trainer(cfg, tmp_path / 'run')
    assert first.x_train.is_cuda and next(first.model.parameters()).is_cuda
    assert first.fit(progress=False, epochs_this_run=2) is None
    resumed = Trainer(cfg, tmp_path / 'run', resume=tmp_path / 'run' / 'last.pt')
    assert (resumed.epoch, resumed.step) == (first.epoch, first.step)
    best = resumed.fit(progress=False)
    log = (tmp_path / 'run' / 'log.csv').read_text().splitlines()
    losses = [float(row.split(',')[3]) for row in log[1:]]
    assert len(losses) == 4 and losses[-1] < 0.7 * losses[0]
    saved = torch.load(best, weights_only=True)['state_dict']
    assert all(v.device.type == 'cpu' for v in saved.values())
    assert load_model(str(best)).spec.metrics['val_acc'] > 0.5


def test_weight_ema_follows_the_model_with_a_warmed_up_decay():
    from fer_ros.learning.model_weights import WeightEMA
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    ema = WeightEMA(model, decay=0.9)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model(torch.randn(4, 3))  # moves the batch-norm statistics and its batch counter
    ema.update(model)
    decay = 2 / 11  # warm-up: min(0.9, (1 + 1) / (10 + 1))
    for key, value in model.state_dict().items():
        if value.is_floating_point():
            expected = decay * start[key] + (1 - decay) * value
        else:
            expected = value
        torch.testing.assert_close(ema.module.state_dict()[key], expected)
    assert not any(p.requires_grad for p in ema.module.parameters())
    with pytest.raises(ValueError, match='ema_decay'):
        WeightEMA(model, 1.0)


def test_ema_weights_are_validated_checkpointed_and_resumed(tmp_path):
    data = synthetic_fer2013(tmp_path / 'train.npz')
    cfg = _config(data, epochs=3, max_batches=3, ema_decay=0.9)
    straight = Trainer(cfg, tmp_path / 'a')
    best = straight.fit(progress=False)
    saved = load_model(str(best)).module.state_dict()
    assert straight.eval_model is straight.ema.module
    assert any(not torch.equal(saved[k], v) for k, v in straight.model.state_dict().items())

    first = Trainer(cfg, tmp_path / 'b')
    first.fit(progress=False, epochs_this_run=2)
    resumed = Trainer(cfg, tmp_path / 'b', resume=tmp_path / 'b' / 'last.pt')
    assert resumed.ema.updates == 6
    resumed.fit(progress=False)
    for a, b in zip(straight.ema.module.state_dict().values(),
                    resumed.ema.module.state_dict().values()):
        torch.testing.assert_close(a, b)
    Trainer(_config(data, epochs=1, max_batches=1), tmp_path / 'c').fit(progress=False)
    with pytest.raises(ValueError, match='without ema_decay'):
        Trainer(cfg, tmp_path / 'c', resume=tmp_path / 'c' / 'last.pt')


def test_init_maps_classifier_rows_by_class_name():
    from fer_ros.learning.model_weights import init_from
    from fer_ros.models import ARCHITECTURES, InputSpec, LoadedModel, ModelSpec
    kwargs = {'widths': [8, 16]}
    spec = ModelSpec(name='src', architecture='fer_cnn', class_names=('happy', 'sad', 'angry'),
                     input=InputSpec(48, 1, 0.5, 0.5, 0.05), weights='test', license='MIT',
                     arch_kwargs=kwargs)
    torch.manual_seed(0)
    source = LoadedModel(spec, ARCHITECTURES['fer_cnn'](num_classes=3, **kwargs))
    target = ARCHITECTURES['fer_cnn'](num_classes=3, **kwargs)
    fresh_contempt = target.classifier.weight[1].clone()
    init_from(target, source, 'fer_cnn', kwargs, ('sad', 'contempt', 'happy'))
    src, dst = source.module.state_dict(), target.state_dict()
    for key in src:
        if not key.startswith('classifier.'):
            assert torch.equal(src[key], dst[key]), key
    for row, src_row in ((0, 1), (2, 0)):
        assert torch.equal(dst['classifier.weight'][row], src['classifier.weight'][src_row])
        assert dst['classifier.bias'][row] == src['classifier.bias'][src_row]
    assert torch.equal(dst['classifier.weight'][1], fresh_contempt)
    with pytest.raises(ValueError, match='--arch fer_cnn'):
        init_from(target, source, 'resnet_small', kwargs, ('sad',))


def test_fine_tuning_starts_from_the_init_checkpoint(tmp_path):
    data = synthetic_fer2013(tmp_path / 'train.npz')
    first = Trainer(_config(data, epochs=4, augment=False), tmp_path / 'a')
    best = first.fit(progress=False)
    cfg = _config(data, epochs=2, max_batches=2, init=str(best))
    tuned = Trainer(cfg, tmp_path / 'b')
    source_acc = load_model(str(best)).spec.metrics['val_acc']
    assert tuned.validate()['accuracy'] == pytest.approx(source_acc, abs=0.02)
    assert source_acc > 0.3  # chance is 1/7
    assert tuned.spec.weights.endswith('starting from a/best.pt')
    tuned.fit(progress=False, epochs_this_run=1)
    best.unlink()  # resuming a fine-tune needs its own state, not the source any more
    resumed = Trainer(cfg, tmp_path / 'b', resume=tmp_path / 'b' / 'last.pt')
    assert (resumed.epoch, resumed.step) == (1, 2)


def test_distillation_mixes_the_teachers_probabilities_into_the_targets(tmp_path):
    from fer_ros.learning.scoring import ensemble_probabilities
    data = synthetic_fer2013(tmp_path / 'train.npz')
    teacher = Trainer(_config(data, epochs=2, augment=False), tmp_path / 'a').fit(progress=False)
    student = Trainer(_config(data, epochs=1, max_batches=2, teacher=f'{teacher}+{teacher}',
                              distill_weight=0.25), tmp_path / 'b')
    probs = ensemble_probabilities(load_ensemble(str(teacher)), student.train_set, tta_flip=True)
    expected = 0.75 * student.train_set.targets + 0.25 * probs
    torch.testing.assert_close(student.fit_targets, torch.from_numpy(expected))
    assert not np.isin(probs, (0, 1)).all()  # the teacher adds more than the labels
    assert student.spec.weights.endswith('distilled from a/best.pt+a/best.pt')
    student.fit(progress=False)
    assert str(tmp_path) not in (tmp_path / 'b' / 'card.md').read_text()
    with pytest.raises(ValueError, match='distill_weight'):
        Trainer(_config(data, teacher=str(teacher), distill_weight=1.5), tmp_path / 'c')


def test_evaluate_cli_writes_a_report(tmp_path, capsys):
    data = synthetic_fer2013(tmp_path / 'val.npz', n=70)
    evaluate_main(['mini_xception_fer2013', str(data), '--tta-flip', '--out', str(tmp_path / 'r')])
    report = json.loads((tmp_path / 'r' / 'report.json').read_text())
    assert report['samples'] == 70 and report['tta_flip'] is True
    assert np.array(report['confusion']).sum() == 70
    assert (tmp_path / 'r' / 'confusion.png').exists()
    assert 'accuracy (majority)' in capsys.readouterr().out


def test_evaluate_record_updates_checkpoint_and_card(tmp_path):
    data = synthetic_fer2013(tmp_path / 'val.npz', n=70)
    run = tmp_path / 'run'
    Trainer(_config(synthetic_fer2013(tmp_path / 'train.npz'), epochs=1, max_batches=2),
            run).fit(progress=False)
    ckpt = (run / 'best.pt').rename(tmp_path / 'tiny.pt')
    card = (run / 'card.md').rename(tmp_path / 'tiny.md')
    evaluate_main([str(ckpt), str(data), '--record'])
    evaluate_main([str(ckpt), str(data), '--record', '--tta-flip', '--latency'])
    metrics = load_model(str(ckpt)).spec.metrics
    prefix = f'{data.parent.name}_val'
    assert 0 <= metrics[f'{prefix}_acc'] <= 1 and metrics['cpu_ms_per_face_b1'] > 0
    assert {f'{prefix}_acc', f'{prefix}_flip_acc', 'cpu_ms_per_face_b1', 'val_acc'} <= set(metrics)
    text = card.read_text()
    assert text.startswith('# Model card') and text.count('## Recorded metrics') == 1
    assert f"| {prefix}_flip_acc | {metrics[f'{prefix}_flip_acc']:.4g} |" in text
    assert f"| cpu_ms_per_face_b8 | {metrics['cpu_ms_per_face_b8']:.4g} |" in text


@pytest.mark.skipif(not (DATA / 'fer2013' / 'public_test.npz').exists(),
                    reason='../shared is not present')
@pytest.mark.parametrize('spec', [s for s in [*list_models(), *list_ensembles()]
                                  if 'fer2013_public_test_acc' in s.metrics],
                         ids=lambda s: s.name)
def test_recorded_public_test_accuracy_is_reproduced(spec):
    from fer_ros.learning.scoring import evaluate
    report = evaluate(load_ensemble(spec.name), load_dataset(DATA / 'fer2013' / 'public_test.npz'))
    assert report['accuracy'] == pytest.approx(spec.metrics['fer2013_public_test_acc'], abs=1e-3)


@pytest.mark.parametrize('arch', ['mini_xception', 'fer_cnn', 'resnet_small'])
def test_onnx_export_matches_torch(tmp_path, arch, astronaut_bgr):
    from fer_ros.learning.export import main as export_main
    from fer_ros.models import ARCHITECTURES, InputSpec, ModelSpec, save_checkpoint
    from fer_ros.perception.classifier import ExpressionClassifier
    spec = ModelSpec(name=arch, architecture=arch, class_names=CLASSES, weights='test',
                     license='MIT', input=InputSpec(48, 1, 0.5, 0.5, 0.05),
                     arch_kwargs={'widths': [8, 16, 32]} if arch != 'mini_xception' else {})
    torch.manual_seed(0)
    module = ARCHITECTURES[arch](num_classes=7, **spec.arch_kwargs).eval()
    save_checkpoint(tmp_path / 'm.pt', module, spec)
    data = synthetic_fer2013(tmp_path / 'calib.npz', n=70)
    export_main([str(tmp_path / 'm.pt'), '--int8', str(data), '--val', str(data)])
    sidecar = json.loads((tmp_path / 'm.json').read_text())
    assert sidecar['class_names'] == list(CLASSES) and sidecar['input']['size'] == 48
    assert sidecar['parity_max_probability_diff'] < 1e-3
    assert 0 <= json.loads((tmp_path / 'm.int8.json').read_text())['val_acc_int8'] <= 1
    boxes = [(173, 67, 103, 103), (150, 50, 140, 150)]
    expected = ExpressionClassifier(str(tmp_path / 'm.pt')).predict(astronaut_bgr, boxes)
    for backend, tolerance in (('onnxruntime', 1e-3), ('onnxruntime_int8', 0.05)):
        got = ExpressionClassifier(str(tmp_path / 'm.pt'), backend=backend).predict(
            astronaut_bgr, boxes)
        np.testing.assert_allclose(got, expected, atol=tolerance)


def test_validation_classes_are_aligned_by_name(tmp_path):
    from fer_ros.learning.data import FaceDataset
    from fer_ros.learning.splits import class_aligned
    val = FaceDataset(np.zeros((2, 48, 48), np.uint8),
                      np.array([[1, 0], [0.25, 0.75]], np.float32), ('sad', 'happy'), 'v')
    aligned = class_aligned(val, ('happy', 'neutral', 'sad'))
    np.testing.assert_allclose(aligned.targets, [[0, 0, 1], [0.75, 0, 0.25]])
    with pytest.raises(ValueError, match='contempt'):
        class_aligned(FaceDataset(val.images, val.targets, ('sad', 'contempt'), 'v'),
                       ('happy', 'sad'))


def synthetic_posed(folder, people=6, seed=1):
    """A posed-set folder as ../shared lays them out: 192 px colour crops of 'faces' (a class
    blob, as synthetic_fer2013) with the detector box and keypoints in index.csv; every third
    person is val, and one compound expression per person."""
    import cv2
    rng = np.random.default_rng(seed)
    rows = ['path,label,identity,split,face_x,face_y,face_w,face_h,keypoints']
    for person in range(people):
        split = 'val' if person % 3 == 2 else 'train'
        for label in (*CLASSES, 'sadly_angry'):
            face = rng.integers(0, 60, (48, 48)).astype(np.uint8)
            y, x = divmod(CLASSES.index(label) if label in CLASSES else 5, 3)
            face[4 + 14 * y:14 + 14 * y, 4 + 14 * x:14 + 14 * x] = 230
            big = np.full((192, 192), 30, np.uint8)
            big[41:151, 41:151] = cv2.resize(face, (110, 110), interpolation=cv2.INTER_NEAREST)
            path = f'images/{label}/{person}_{label}.jpg'
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / path), cv2.cvtColor(big, cv2.COLOR_GRAY2BGR))
            rows.append(f'{path},{label},P{person},{split},48.0,48.0,96.0,96.0,'
                        '"78.0,80.0 114.0,80.0 96.0,100.0 96.0,120.0 56.0,88.0 136.0,88.0"')
    (folder / 'index.csv').write_text('\n'.join(rows) + '\n')
    return folder


def test_posed_faces_are_mixed_in_and_the_worst_val_set_picks_the_epoch(tmp_path):
    from fer_ros.learning.posed import load_posed
    data = synthetic_fer2013(tmp_path / 'train.npz')
    posed = synthetic_posed(tmp_path / 'posed')
    teacher = Trainer(_config(data, epochs=1, max_batches=2), tmp_path / 't').fit(progress=False)
    cfg = _config(data, epochs=4, val=f'{data}+{posed}', posed=str(posed), posed_repeat=3,
                  compound=True, teacher=str(teacher), distill_weight=0.5, augment=False)
    trainer = Trainer(cfg, tmp_path / 'run')
    n = trainer.n_primary
    own = load_posed(posed, 'train', compound=True)
    assert len(trainer.train_set) == n + 3 * len(own) == 280 + 3 * 4 * 8
    np.testing.assert_array_equal(trainer.train_set.images[n:n + len(own)], own.images)
    # the teacher relabels the primary faces only; compounds stay split in two
    fit = trainer.fit_targets.numpy()
    assert not np.isin(fit[:n], (0, 0.5, 1)).all()
    np.testing.assert_array_equal(fit[n:], np.tile(own.targets, (3, 1)))
    assert sorted(np.unique(fit[n:])) == [0.0, 0.5, 1.0]
    assert [len(v) for v in trainer.val_sets] == [280, 2 * 7]  # val people: basic only
    best = trainer.fit(progress=False)
    log = (tmp_path / 'run' / 'log.csv').read_text().splitlines()
    worst = [float(r.split(',')[8]) for r in log[1:]]
    assert trainer.best_acc == pytest.approx(max(worst), abs=1e-6) and max(worst) > 0.5
    card = json.loads((tmp_path / 'run' / 'card.json').read_text())
    assert [k.split('/')[-1] for k in card['validation_sets']] == ['train.npz', 'posed[val]']
    assert 'research use only' in load_model(str(best)).spec.license
    assert str(tmp_path) not in (tmp_path / 'run' / 'card.md').read_text()
    # a resumed run reuses the cached teacher probabilities
    assert (tmp_path / 'run' / 'teacher.npz').is_file()


def test_a_64_px_model_mixes_48_px_faces_upscaled_with_64_px_posed_crops(tmp_path):
    from fer_ros.learning.posed import load_posed
    data = synthetic_fer2013(tmp_path / 'train.npz')
    posed = synthetic_posed(tmp_path / 'posed')
    trainer = Trainer(_config(data, epochs=1, max_batches=2, val=str(data), posed=str(posed),
                              posed_repeat=2, input_size=64), tmp_path / 'run')
    n = trainer.n_primary
    assert trainer.train_set.images.shape[1:] == (64, 64)
    own = load_posed(posed, 'train', 64)
    np.testing.assert_array_equal(trainer.train_set.images[n:n + len(own)], own.images)
    small = np.load(data)['images'][0]
    np.testing.assert_array_equal(trainer.train_set.images[0],
                                  cv2.resize(small, (64, 64), interpolation=cv2.INTER_LINEAR))
    assert load_model(str(trainer.fit(progress=False))).spec.input.size == 64
