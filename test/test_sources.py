import cv2
import numpy as np
import pytest

from fer_ros.sources import SourceError, open_source


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
