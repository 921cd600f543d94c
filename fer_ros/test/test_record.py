"""fer_record: tracked faces of a video or an image folder saved as a dataset."""
import json
import shutil

import cv2
import numpy as np
import pytest
from conftest import MEDIA, needs_shared

from fer_ros.learning.record import main, record
from fer_ros.perception.classifier import ExpressionClassifier
from fer_ros.perception.detection import FaceDetector
from fer_ros.perception.pipeline import FerPipeline
from fer_ros.perception.preprocess import face_batch, normalize


@pytest.fixture(scope='module')
def classifier():
    return ExpressionClassifier(device='cpu')


def rows(out):
    return [json.loads(line) for line in (out / 'index.jsonl').read_text().splitlines()]


def test_a_still_face_is_saved_once_and_its_crop_is_what_the_classifier_sees(
        tmp_path, astronaut_bgr, classifier):
    shots = tmp_path / 'shots'
    shots.mkdir()
    for i in range(4):
        cv2.imwrite(str(shots / f'{i}.png'), astronaut_bgr)
    with FaceDetector() as detector:
        pipeline = FerPipeline(detector, classifier)
        stats = record(str(shots), tmp_path / 'data', pipeline, progress=False)
        (row,) = rows(tmp_path / 'data')
        assert (stats.frames, stats.faces, stats.saved, stats.duplicates) == (4, 4, 1, 3)
        crop = cv2.imread(str(tmp_path / 'data' / row['crop']), cv2.IMREAD_UNCHANGED)
        spec = classifier.model.members[0].spec.input
        assert crop.shape == (spec.size, spec.size)
        face = detector.detect(cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2RGB))[0]
        seen = face_batch(astronaut_bgr, [face.box], spec, [face.keypoints], detector.framing)
        np.testing.assert_allclose(normalize(crop[None], spec), seen, atol=1e-6)
    context = cv2.imread(str(tmp_path / 'data' / row['context']))
    assert context.shape == (128, 128, 3)
    assert row['prediction'] == 'happy' and row['track'] == 0 and row['frame'] == 0
    assert row['time'] is None and row['source'] == str(shots)
    assert row['box'] == list(face.box) and row['detector_score'] > 0.5
    assert set(row['probabilities']) == set(classifier.class_names)
    # min_change 0 keeps every crop; a second run appends to the same index
    with FaceDetector() as detector:
        record(str(shots), tmp_path / 'data', FerPipeline(detector, classifier),
               min_change=0.0, progress=False)
    assert len(rows(tmp_path / 'data')) == 5
    assert len(list((tmp_path / 'data' / 'crops').iterdir())) == 5


@needs_shared
def test_a_video_keeps_changing_faces_and_skips_near_duplicates(tmp_path, classifier):
    with FaceDetector() as detector:
        stats = record(str(MEDIA / 'facerec_short_hamilton_clip.mp4'), tmp_path,
                       FerPipeline(detector, classifier), max_frames=120, progress=False)
    assert stats.frames == 120 and 0 < stats.saved < stats.faces
    assert stats.duplicates == stats.faces - stats.saved
    found = rows(tmp_path)
    assert len(found) == stats.saved
    assert all((tmp_path / r['crop']).is_file() and (tmp_path / r['context']).is_file()
               for r in found)
    assert all(r['time'] == pytest.approx(r['frame'] / 29.97, abs=1e-3) for r in found)
    assert len({r['track'] for r in found}) == len(stats.tracks)


def test_the_command_exits_0_with_a_summary(tmp_path, astronaut_bgr):
    import subprocess
    import sys
    from pathlib import Path
    cv2.imwrite(str(tmp_path / 'face.png'), astronaut_bgr)
    done = subprocess.run([str(Path(sys.executable).parent / 'fer_record'),
                           str(tmp_path / 'face.png'), '--out', str(tmp_path / 'data'),
                           '--no-progress'], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith('predicted: happy 1') and done.stderr == ''


def test_a_bad_source_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match='cannot open source'):
        main([str(tmp_path / 'missing.mp4'), '--out', str(tmp_path / 'data')])


@needs_shared
def test_posed_photos_in_a_folder(tmp_path, classifier):
    shots = tmp_path / 'shots'
    shots.mkdir()
    for name in ('happy', 'surprised', 'sad'):
        shutil.copy(MEDIA / f'faceapi_{name}.jpg', shots / f'{name}.jpg')
    with FaceDetector() as detector:
        record(str(shots), tmp_path / 'data', FerPipeline(detector, classifier), progress=False)
    assert [r['prediction'] for r in rows(tmp_path / 'data')] == ['happy', 'sad', 'surprise']


def _frames(folder, image, count):
    folder.mkdir()
    for i in range(count):  # each frame a little different: every one is saved
        cv2.imwrite(str(folder / f'{i:03d}.png'), np.roll(image, 3 * i, axis=1))
    return folder


def test_a_full_disk_stops_with_a_reason_and_leaves_a_readable_index(
        tmp_path, astronaut_bgr, small_disk, capsys):
    """fer_record left a torn last line (two tracebacks), so nothing could read the folder."""
    from fer_ros.learning.recorded import read_index
    shots = _frames(tmp_path / 'shots', astronaut_bgr, 40)
    out = small_disk / 'data'
    for _ in range(2):  # the second run appends to a folder the first filled
        with pytest.raises(SystemExit) as exit_:
            main([str(shots), '--out', str(out), '--min-change', '0', '--no-progress'])
        assert 'No space left on device' in str(exit_.value.code) and \
            'faces saved before are kept' in str(exit_.value.code)
    problems = []
    saved = read_index(out, problems)
    assert saved and problems == []
    assert (out / 'index.jsonl').read_bytes().endswith(b'\n')
    for row in saved:
        assert (out / row['crop']).is_file() and (out / row['context']).is_file()
    files = {p.relative_to(out).as_posix() for p in out.glob('*/*')}
    assert files == {r[k] for r in saved for k in ('crop', 'context')}  # no orphan images
    assert 'Traceback' not in capsys.readouterr().err


def test_a_torn_last_line_is_cut_before_the_next_run_appends(tmp_path, astronaut_bgr):
    from fer_ros.learning.recorded import read_index
    cv2.imwrite(str(tmp_path / 'face.png'), astronaut_bgr)
    out = tmp_path / 'data'
    main([str(tmp_path / 'face.png'), '--out', str(out), '--no-progress'])
    with (out / 'index.jsonl').open('a') as f:
        f.write('{"crop": "crops/cut-by-a-full-di')
    problems = []
    assert len(read_index(out, problems)) == 1 and problems == [
        'index.jsonl line 2: not a complete JSON line (a write cut short?)']
    main([str(tmp_path / 'face.png'), '--out', str(out), '--no-progress'])
    problems = []
    assert len(read_index(out, problems)) == 2 and problems == []


@pytest.mark.parametrize('out, reason', [
    ('/proc/fer_faces', 'cannot record into'), ('/dev/null', 'cannot record into'),
    ('x' * 300, 'File name too long'), ('', '--out: give a dataset folder'),
    ('a_file', 'cannot record into')])
def test_unusable_out_folders_are_one_line_errors(tmp_path, astronaut_bgr, out, reason,
                                                   capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'a_file').write_text('')
    cv2.imwrite(str(tmp_path / 'face.png'), astronaut_bgr)
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / 'face.png'), '--out', out, '--no-progress'])
    assert reason in str(exit_.value.code) + capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a_file', 'face.png']
