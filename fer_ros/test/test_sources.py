import os
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_ros.perception.sources import SourceError, open_source


def write_clip(path, size=(64, 48), frames=10):
    """An MJPG clip of noise frames (noise keeps every frame several kB large)."""
    rng = np.random.default_rng(size[0])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 30, size)
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (size[1], size[0], 3), np.uint8))
    writer.release()


@pytest.fixture
def images(tmp_path):
    paths = []
    for i in range(3):
        path = tmp_path / f'frame_{i}.png'
        cv2.imwrite(str(path), np.full((20, 30, 3), 50 * i, np.uint8))
        paths.append(path)
    return tmp_path, paths


def test_folder_and_glob_replay_in_order(images):
    folder, _ = images
    for spec in (str(folder), str(folder / 'frame_*.png')):
        source = open_source(spec, loop=False)
        values = [int(source.read()[0, 0, 0]) for _ in range(3)]
        assert values == [0, 50, 100]
        assert source.read() is None and source.finished


def test_single_image_loops_and_resizes(images):
    _, paths = images
    source = open_source(str(paths[1]), width=64, height=48, loop=True)
    for _ in range(3):
        frame = source.read()
        assert frame.shape == (48, 64, 3) and not source.finished


def test_video_file_loops(tmp_path):
    path = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 10, (32, 24))
    for i in range(4):
        writer.write(np.full((24, 32, 3), 60 * i, np.uint8))
    writer.release()
    source = open_source(str(path), loop=True)
    frames = [source.read() for _ in range(6)]
    assert all(f.shape == (24, 32, 3) for f in frames)
    assert abs(int(frames[4][0, 0, 0]) - int(frames[0][0, 0, 0])) < 10  # back at the start
    source.close()
    once = open_source(str(path), loop=False)
    assert sum(once.read() is not None for _ in range(6)) == 4 and once.finished


def test_builtin_photo():
    frame = open_source('builtin:astronaut').read()
    assert frame.shape == (512, 512, 3) and frame.dtype == np.uint8


@pytest.mark.parametrize('spec, reason', [
    ('/no/such/file.png', 'no such file'),
    ('/dev/video99', 'no such device'),
    ('builtin:nothing', 'unknown built-in'),
    ('', 'empty source'),
])
def test_unopenable_sources_name_source_and_reason(spec, reason):
    with pytest.raises(SourceError, match=reason) as info:
        open_source(spec)
    assert f"'{spec}'" in str(info.value)


def test_unreadable_image_is_an_error(tmp_path):
    bad = tmp_path / 'bad.png'
    bad.write_bytes(b'not a png')
    with pytest.raises(SourceError, match='not a readable image'):
        open_source(str(bad))


def huge_png_header() -> bytes:
    """A PNG that claims 100000 x 100000 pixels: cv2.imread raises instead of returning None."""
    def chunk(kind, data):
        return (len(data).to_bytes(4, 'big') + kind + data
                + zlib.crc32(kind + data).to_bytes(4, 'big'))
    size = (100000).to_bytes(4, 'big') * 2 + bytes([8, 2, 0, 0, 0])
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', size) + chunk(b'IEND', b'')


@pytest.mark.parametrize('spec', ['/tmp/' + 'a' * 300, 'x' * 300 + '.mp4', 'd' * 300 + '/'])
def test_overlong_path_is_a_source_error(spec):
    with pytest.raises(SourceError, match='File name too long') as info:
        open_source(spec)
    assert str(info.value).startswith(f"cannot open source '{spec}'")


def test_any_os_error_while_opening_is_a_source_error(tmp_path, monkeypatch):
    def denied(self):
        raise PermissionError(13, 'Permission denied', str(self))
    monkeypatch.setattr(Path, 'iterdir', denied)
    with pytest.raises(SourceError, match='Permission denied'):
        open_source(str(tmp_path))


@pytest.mark.parametrize('corrupt', [b'corrupt', huge_png_header()], ids=['junk', 'huge'])
def test_bad_image_of_a_sequence_is_skipped_once_until_it_changes(tmp_path, monkeypatch,
                                                                   corrupt):
    for i in range(5):
        cv2.imwrite(str(tmp_path / f'f{i}.png'), np.full((20, 30, 3), 40 * i, np.uint8))
    bad = tmp_path / 'f2.png'
    bad.write_bytes(corrupt)
    reads = []
    imread = cv2.imread
    monkeypatch.setattr(cv2, 'imread', lambda name, *a: reads.append(name) or imread(name, *a))
    skipped = []
    source = open_source(str(tmp_path), on_skip=skipped.append)
    values = [int(source.read()[0, 0, 0]) for _ in range(12)]
    assert values == [0, 40, 120, 160] * 3  # the next good file in the same read
    assert len(skipped) == 1 and str(bad) in skipped[0]
    assert reads.count(str(bad)) == 1  # remembered, not read again every pass
    cv2.imwrite(str(bad), np.full((20, 30, 3), 80, np.uint8))  # fixed: read again
    assert [int(source.read()[0, 0, 0]) for _ in range(5)] == [0, 40, 80, 120, 160]
    bad.write_bytes(corrupt)  # broken again: reported again
    assert [int(source.read()[0, 0, 0]) for _ in range(4)] == [0, 40, 120, 160]
    assert len(skipped) == 2


def test_file_of_a_sequence_deleted_while_playing_is_skipped(images):
    folder, paths = images
    skipped = []
    source = open_source(str(folder), loop=False, on_skip=skipped.append)
    assert int(source.read()[0, 0, 0]) == 0
    paths[2].unlink()
    assert int(source.read()[0, 0, 0]) == 50
    assert source.read() is None and source.finished and len(skipped) == 1


def test_sequence_without_a_readable_image_is_an_error(tmp_path):
    for name in ('a.png', 'b.jpg'):
        (tmp_path / name).write_bytes(b'junk')
    skipped = []
    source = open_source(str(tmp_path), on_skip=skipped.append)
    with pytest.raises(SourceError, match='none of its 2 images is readable'):
        source.read()
    assert skipped == []  # one error, not one line per file


@pytest.mark.parametrize('change', ['delete', 'replace', 'rewrite', 'truncate'])
def test_video_file_changed_on_disk_is_noticed_and_reopens_with_the_new_clip(tmp_path,
                                                                             change):
    path = tmp_path / 'clip.avi'
    write_clip(path)
    source = open_source(str(path))
    assert source.read().shape == (48, 64, 3)
    if change == 'delete':
        path.unlink()
    elif change == 'replace':  # a new file moved over it (new inode)
        write_clip(tmp_path / 'new.avi', size=(32, 24))
        os.replace(tmp_path / 'new.avi', path)
    elif change == 'rewrite':  # rewritten in place (same inode)
        write_clip(path, size=(32, 24))
    else:
        os.truncate(path, 6000)
    with pytest.raises(SourceError, match='file was deleted' if change == 'delete'
                       else 'file changed on disk'):
        source.read()
    source.close()
    if change == 'delete':
        with pytest.raises(SourceError, match='no such file'):
            open_source(str(path))
        write_clip(path, size=(32, 24))  # it comes back
    if change != 'truncate':
        assert open_source(str(path)).read().shape == (24, 32, 3)


def test_unopenable_device_leaves_the_reporting_to_the_caller(capfd):
    for spec in ('/dev/video99', '99'):
        with pytest.raises(SourceError, match='no such device'):
            open_source(spec)
    assert '[ WARN' not in capfd.readouterr().err  # OpenCV's retry warnings are silenced


def test_one_output_side_keeps_the_aspect_ratio(images):
    _, paths = images  # 30 x 20 pixels
    assert open_source(str(paths[0]), width=60).read().shape == (40, 60, 3)
    assert open_source(str(paths[0]), height=10).read().shape == (10, 15, 3)
