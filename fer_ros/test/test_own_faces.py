"""The loop of your own faces: record, label through fer_label's API, fine-tune in two
stages, compare before and after, load the result in the node's classifier."""
import json
import shutil
import threading
import urllib.request
from collections import Counter

import numpy as np
import pytest
import torch
from conftest import MEDIA, needs_shared

from fer_ros.learning.config import TrainConfig
from fer_ros.learning.data import load_dataset, split_by_group
from fer_ros.learning.label import LabelStore, make_server
from fer_ros.learning.recorded import run_of
from fer_ros.learning.record import record
from fer_ros.learning.trainer import Trainer
from fer_ros.models import DEFAULT_MODEL
from fer_ros.perception.classifier import ExpressionClassifier
from fer_ros.perception.detection import FaceDetector
from fer_ros.perception.pipeline import FerPipeline


def call(server, path, body=None):
    """The labelling API as the page calls it: its token, one client, JSON."""
    headers = {'X-Fer-Label-Token': server.token, 'X-Fer-Label-Client': 'labeller',
               'Content-Type': 'application/json'}
    request = urllib.request.Request(f'http://127.0.0.1:{server.server_port}/api/{path}',
                                     None if body is None else json.dumps(body).encode(),
                                     headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope='module')
def labelled(tmp_path_factory):
    """The shared clip's first 150 frames and the posed photos, recorded; each track labelled
    through the server as a user would: posed photos by their name, a clip track by the
    model's most frequent guess, tracks of one face rejected."""
    root = tmp_path_factory.mktemp('own')
    photos = root / 'photos'
    photos.mkdir()
    for name in ('angry', 'disgusted', 'fearful', 'happy', 'neutral', 'sad', 'surprised'):
        shutil.copy(MEDIA / f'faceapi_{name}.jpg', photos / f'{name}.jpg')
    data = root / 'data'
    classifier = ExpressionClassifier(device='cpu')
    for source, frames in ((str(MEDIA / 'facerec_short_hamilton_clip.mp4'), 150),
                           (str(photos), 0)):
        with FaceDetector() as detector:
            record(source, data, FerPipeline(detector, classifier), max_frames=frames,
                   progress=False)
    server = make_server(LabelStore(data))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    items = call(server, 'state')['items']
    rows = {json.loads(line)['crop']: json.loads(line)
            for line in (data / 'index.jsonl').read_text().splitlines()}
    names = {'angry': 'angry', 'disgusted': 'disgust', 'fearful': 'fear', 'happy': 'happy',
             'neutral': 'neutral', 'sad': 'sad', 'surprised': 'surprise'}
    tracks: dict[tuple, list] = {}
    for item in items:
        source = rows[item['crop']]['source']
        tracks.setdefault((run_of(item), source, item['track']), []).append(item)
    for (_, source, _), group in tracks.items():
        crops = [i['crop'] for i in group]
        if source == str(photos):
            for i in group:  # a folder's faces: one image each, labelled by its name
                name = sorted(names)[rows[i['crop']]['frame']]
                call(server, 'label', {'crops': [i['crop']], 'label': names[name]})
        elif len(group) == 1:
            call(server, 'label', {'crops': crops, 'label': 'reject'})
        else:
            guess = Counter(i['prediction'] for i in group).most_common(1)[0][0]
            call(server, 'label', {'crops': crops, 'label': guess})
    server.shutdown()
    server.server_close()
    return data


@needs_shared
def test_a_labelled_folder_loads_grouped_by_track(labelled):
    data = load_dataset(labelled)
    labels = json.loads((labelled / 'labels.json').read_text())
    assert len(data) == sum(v != 'reject' for v in labels.values()) and len(data) > 20
    assert data.images.shape[1:] == (48, 48) and data.groups is not None
    train, val = split_by_group(data, 0.3, seed=0)
    assert len(val) >= 0.3 * len(data) and len(train) > 0
    assert not set(train.groups) & set(val.groups)


@needs_shared
def test_fine_tuning_in_two_stages_reports_before_and_after(labelled, tmp_path):
    cfg = TrainConfig(train=str(labelled), val_fraction=0.3, init=DEFAULT_MODEL,
                      crop_margin=0.05, freeze_epochs=1, backbone_lr_scale=0.1, epochs=3,
                      batch_size=16, lr=0.01, threads=1, patience=10)
    trainer = Trainer(cfg, tmp_path)
    backbone = {k: v.clone() for k, v in trainer.model.state_dict().items()
                if not k.startswith('classifier.')}
    head = trainer.model.classifier.weight.detach().clone()
    trainer.fit(progress=False, epochs_this_run=1)
    for key, value in trainer.model.state_dict().items():  # frozen: weights and BN stats
        if key in backbone:
            torch.testing.assert_close(value, backbone[key], msg=key)
    assert not torch.equal(trainer.model.classifier.weight, head)
    trainer.fit(progress=False, epochs_this_run=1)  # unfrozen, at a tenth of the rate
    assert any(not torch.equal(v, backbone[k]) for k, v in trainer.model.state_dict().items()
               if k in backbone and v.is_floating_point())
    best = trainer.fit(progress=False)
    report = (tmp_path / 'before_after.md').read_text()
    assert '| accuracy |' in report and (tmp_path / 'confusion_before.png').is_file()
    before, after = (float(x) for x in
                     report.split('| accuracy |')[1].split('\n')[0].strip(' |').split(' | '))
    assert 0.0 <= before <= 1.0 and 0.0 <= after <= 1.0
    clf = ExpressionClassifier(str(best), 'cpu')  # the node loads it by path
    image = np.full((240, 320, 3), 128, np.uint8)
    assert clf.predict(image, [(100, 60, 100, 100)]).shape == (1, len(clf.class_names))


@needs_shared
def test_the_readme_fine_tune_command(labelled, tmp_path):
    """Step 3 of the README's loop, as a user types it (fewer epochs)."""
    import subprocess
    import sys
    from pathlib import Path
    done = subprocess.run(
        [str(Path(sys.executable).parent / 'fer_train'), str(labelled), '--init', DEFAULT_MODEL,
         '--crop-margin', '0.05', '--freeze-epochs', '1', '--backbone-lr-scale', '0.1',
         '--epochs', '2', '--lr', '0.01', '--batch-size', '32', '--threads', '1',
         '--no-progress', '--out', str(tmp_path / 'my_model')],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / 'my_model' / 'before_after.md').is_file()
    assert ExpressionClassifier(str(tmp_path / 'my_model' / 'best.pt'), 'cpu').class_names
