"""rosbag2 MCAP files as a source: written here with mcap-ros2-support, as rosbag2 writes them
(ros2msg schemas, CDR), read back by open_source, camera_node and fer_record."""
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_nodes import Recorder, graph, spin_until  # noqa: F401 (graph is a fixture)

from fer_ros.perception.sources import SourceError, open_source

START = 1_700_000_000  # header stamps of the recording (s)


def msgdef(kind: str) -> str:
    """The ros2msg schema text rosbag2 stores: the .msg and, below it, every message it uses."""
    share = Path(sys.prefix) / 'share'

    def text(name):
        package, _, msg = name.split('/')
        return (share / package / 'msg' / f'{msg}.msg').read_text()
    parts = [text(kind)]
    for dependency in ('std_msgs/msg/Header', 'builtin_interfaces/msg/Time'):
        parts.append('=' * 80 + f"\nMSG: {dependency.replace('/msg/', '/')}\n{text(dependency)}")
    return '\n'.join(parts)


def write_bag(path: Path, frames: list[np.ndarray], rate: float = 10.0) -> None:
    """image_raw (bgr8 Images) and image_raw/compressed (JPEG) of the frames at `rate` Hz."""
    from mcap_ros2.writer import Writer
    with path.open('wb') as f:
        writer = Writer(f)
        raw = writer.register_msgdef('sensor_msgs/msg/Image', msgdef('sensor_msgs/msg/Image'))
        jpeg = writer.register_msgdef('sensor_msgs/msg/CompressedImage',
                                      msgdef('sensor_msgs/msg/CompressedImage'))
        for i, frame in enumerate(frames):
            ns = START * 10**9 + round(i / rate * 1e9)
            header = {'stamp': {'sec': ns // 10**9, 'nanosec': ns % 10**9}, 'frame_id': 'cam'}
            writer.write_message('image_raw', raw, {
                'header': header, 'height': frame.shape[0], 'width': frame.shape[1],
                'encoding': 'bgr8', 'is_bigendian': 0, 'step': frame.shape[1] * 3,
                'data': frame.tobytes()}, log_time=ns + 5_000_000, publish_time=ns)
            writer.write_message('image_raw/compressed', jpeg, {
                'header': header, 'format': 'jpeg',
                'data': cv2.imencode('.jpg', frame)[1].tobytes()},
                log_time=ns + 5_000_000, publish_time=ns)
        writer.finish()


@pytest.fixture(scope='module')
def bag(tmp_path_factory, astronaut_bgr):
    frames = [np.roll(astronaut_bgr, 20 * i, axis=1) for i in range(5)]
    path = tmp_path_factory.mktemp('bag') / 'run.mcap'
    write_bag(path, frames)
    return path, frames


def read_all(source):
    out = []
    while not source.finished:
        frame = source.read()
        if frame is not None:
            out.append((frame, source.stamp))
    source.close()
    return out


def test_images_come_back_with_their_recorded_stamps(bag):
    path, frames = bag
    got = read_all(open_source(str(path), loop=False, bag_topic='image_raw', bag_realtime=False))
    assert len(got) == 5
    for i, ((frame, stamp), original) in enumerate(zip(got, frames)):
        np.testing.assert_array_equal(frame, original)
        assert stamp == (START, i * 100_000_000)
    compressed = read_all(open_source(str(path), loop=False, bag_topic='image_raw/compressed',
                                      bag_realtime=False))
    assert len(compressed) == 5
    assert np.abs(compressed[2][0].astype(int) - frames[2]).mean() < 4  # JPEG


def test_the_recorded_rate_is_kept_unless_asked_otherwise(bag):
    path, _ = bag
    start = time.monotonic()
    assert len(read_all(open_source(str(path), loop=False, bag_topic='image_raw'))) == 5
    assert time.monotonic() - start >= 0.38  # five frames 0.1 s apart


def test_a_bag_with_several_image_topics_needs_one_named(bag, tmp_path):
    path, _ = bag
    with pytest.raises(SourceError, match=r"image_raw/compressed.*bag_topic"):
        open_source(str(path))
    with pytest.raises(SourceError, match='no image topic'):
        open_source(str(path), bag_topic='depth')
    (tmp_path / 'broken.mcap').write_bytes(b'not a bag')
    with pytest.raises(SourceError, match='broken.mcap.*not a readable MCAP file'):
        open_source(str(tmp_path / 'broken.mcap'))
    (tmp_path / 'cut.mcap').write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    with pytest.raises(SourceError):  # no summary at its end, or its records end early
        read_all(open_source(str(tmp_path / 'cut.mcap'), bag_topic='image_raw',
                             bag_realtime=False))


def test_camera_node_replays_a_bag_with_its_stamps(graph, ros_context, bag):  # noqa: F811
    from rclpy.parameter import Parameter

    from fer_ros.nodes.camera_node import CameraNode
    path, _ = bag
    executor, add = graph
    rec = add(Recorder(ros_context))
    camera = add(CameraNode(context=ros_context, parameter_overrides=[
        Parameter('source', value=str(path)), Parameter('bag_topic', value='image_raw/compressed'),
        Parameter('loop', value=False), Parameter('fps', value=100.0)]))
    assert spin_until(executor, lambda: camera.frames_published == 5 and len(rec.raw) == 5)
    assert [(m.header.stamp.sec, m.header.stamp.nanosec) for m in rec.raw] == [
        (START, i * 100_000_000) for i in range(5)]


def test_fer_record_reads_a_bag(bag, tmp_path):
    from fer_ros.learning.record import main
    path, _ = bag
    main([str(path), '--bag-topic', 'image_raw', '--out', str(tmp_path), '--no-progress',
          '--min-change', '0'])
    rows = [json.loads(line) for line in (tmp_path / 'index.jsonl').read_text().splitlines()]
    assert [r['time'] for r in rows] == pytest.approx([START + i / 10 for i in range(5)])
    assert {r['prediction'] for r in rows} == {'happy'}


def test_fer_record_node_records_a_live_topic(graph, ros_context, tmp_path,  # noqa: F811
                                              astronaut_bgr):
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from fer_ros.nodes.fer_record_node import RecordNode
    from fer_ros.perception.image_conversion import ndarray_to_image
    executor, add = graph
    recorder = add(RecordNode(context=ros_context, parameter_overrides=[
        Parameter('out', value=str(tmp_path)), Parameter('rate', value=0.0),
        Parameter('min_change', value=0.0)], cli_args=['--ros-args', '-r', 'image:=camera']))
    pub = add(Node('camera', context=ros_context)).create_publisher(
        Image, 'camera', qos_profile_sensor_data)
    sent = []
    for i in range(100):
        if recorder.recorder.stats.saved >= 3:
            break
        msg = ndarray_to_image(astronaut_bgr, 'bgr8', Header(frame_id='cam'))
        msg.header.stamp.sec, msg.header.stamp.nanosec = START + i, 0
        pub.publish(msg)
        sent.append(START + i)
        spin_until(executor, lambda: False, timeout=0.2)
    rows = [json.loads(line) for line in (tmp_path / 'index.jsonl').read_text().splitlines()]
    assert len(rows) >= 3 and all(r['time'] in sent for r in rows)
    assert {r['source'] for r in rows} == {'/camera'} and {r['track'] for r in rows} == {0}


def raw_bag(path: Path, payloads: list[bytes], compression: str = 'lz4',
            schema: tuple[str, str] | None = None, gap_after: int | None = None) -> list[int]:
    """A bag of `payloads` (CDR bytes) on image_raw, one chunk each, as rosbag2 writes it;
    `schema`: (name, text) in place of sensor_msgs/msg/Image's. Returns each chunk's offset."""
    from mcap.writer import CompressionType, Writer
    with path.open('wb') as f:
        writer = Writer(f, chunk_size=1, compression=CompressionType[compression.upper()])
        writer.start(profile='ros2')
        name, text = schema or ('sensor_msgs/msg/Image', msgdef('sensor_msgs/msg/Image'))
        schema_id = writer.register_schema(name, 'ros2msg', text.encode())
        channel = writer.register_channel('image_raw', 'cdr', schema_id)
        for i, data in enumerate(payloads):
            ns = START * 10**9 + i * 10**8 + (3600 * 10**9 if gap_after is not None
                                               and i > gap_after else 0)
            writer.add_message(channel, log_time=ns, data=data, publish_time=ns)
        writer.finish()
    from mcap.reader import make_reader
    with path.open('rb') as f:
        return [c.chunk_start_offset for c in make_reader(f).get_summary().chunk_indexes]


def cdr_images(frames: list[np.ndarray]) -> list[bytes]:
    """Images serialised by rclpy, as rosbag2 stores them."""
    from builtin_interfaces.msg import Time
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header

    from fer_ros.perception.image_conversion import ndarray_to_image
    return [serialize_message(ndarray_to_image(f, 'bgr8', Header(
        stamp=Time(sec=START + i), frame_id='cam'))) for i, f in enumerate(frames)]


@pytest.fixture(scope='module')
def small_frames(astronaut_bgr):
    small = cv2.resize(astronaut_bgr, (64, 64))
    return [np.roll(small, 4 * i, axis=1) for i in range(5)]


def replay(path, realtime=False):
    skips: list[str] = []
    source = open_source(str(path), loop=False, bag_realtime=realtime, on_skip=skips.append)
    stamps = [stamp[0] - START for _, stamp in read_all(source)]
    return stamps, source.skipped, skips


@pytest.mark.parametrize('compression', ['lz4', 'zstd'])
def test_a_damaged_chunk_costs_only_its_messages(tmp_path, small_frames, compression):
    """Corrupt bytes in an lz4 chunk ended camera_node and fer_record (LZ4F_decompress)."""
    path = tmp_path / 'damaged.mcap'
    offsets = raw_bag(path, cdr_images(small_frames), compression)
    data = bytearray(path.read_bytes())
    middle = (offsets[2] + offsets[3]) // 2
    data[middle:middle + 64] = bytes(range(64))
    path.write_bytes(bytes(data))
    stamps, skipped, skips = replay(path)
    assert stamps == [0, 1, 3, 4] and skipped == 1
    assert skips and f'the chunk at byte {offsets[2]}' in skips[0]


def test_an_undecodable_message_is_skipped_and_the_rest_replayed(tmp_path, small_frames):
    """One bad message made the rest of the bag unreachable; looping replayed those before."""
    payloads = cdr_images(small_frames)
    payloads[2] = payloads[2][:40]  # cut inside its data
    path = tmp_path / 'bad_message.mcap'
    raw_bag(path, payloads)
    stamps, skipped, skips = replay(path)
    assert stamps == [0, 1, 3, 4] and skipped == 1 and 'a message logged at' in skips[0]


@pytest.mark.parametrize('text, reason', [
    ('string name\nint32 age\n', 'schema lacks data, encoding, header, height, step, width'),
    ('BROKEN', 'schema cannot be parsed')])
def test_a_schema_that_is_no_image_is_refused_when_the_source_opens(tmp_path, small_frames,
                                                                     text, reason):
    """A schema named sensor_msgs/msg/Image with other text killed the process (AttributeError,
    InvalidResourceName) at its first frame."""
    path = tmp_path / 'schema.mcap'
    if text == 'BROKEN':  # every field, and a type name no parser accepts
        text = msgdef('sensor_msgs/msg/Image').replace('std_msgs/Header', 'std_msgs/Hea-der', 1)
    raw_bag(path, cdr_images(small_frames), schema=('sensor_msgs/msg/Image', text))
    with pytest.raises(SourceError, match=reason):
        open_source(str(path), loop=False)


def test_an_oversized_message_is_refused_before_it_is_decompressed(tmp_path):
    """A 1.3 MB bag holding one 512 MB image cost 1.16 GB before the frame was refused."""
    import subprocess
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image
    side = 6800  # 139 MB of zeros: over the 128 MB limit, a few hundred kB compressed
    big = serialize_message(Image(height=side, width=side, encoding='bgr8', step=3 * side,
                                  data=bytes(3 * side * side)))
    path = tmp_path / 'bomb.mcap'
    raw_bag(path, [big])
    del big
    assert path.stat().st_size < 2 << 20
    script = f'''
from pathlib import Path
from fer_ros.perception.sources import open_source
def kb(field):
    return next(int(ln.split()[1]) for ln in Path('/proc/self/status').read_text().splitlines()
                if ln.startswith(field + ':'))
skips = []
source = open_source({str(path)!r}, loop=False, bag_realtime=False, on_skip=skips.append)
Path('/proc/self/clear_refs').write_text('5')
before = kb('VmRSS')
while not source.finished:
    source.read()
print((kb('VmHWM') - before) >> 10, source.skipped, skips[0])
'''
    run = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    peak_mb, skipped, reason = run.stdout.split(' ', 2)
    assert int(peak_mb) < 32 and skipped == '1' and 'over the 128 MB limit' in reason


def test_a_gap_in_the_log_times_is_cut_and_reported(tmp_path, small_frames, monkeypatch):
    """An hour's pause in a bag stalled the replay silently for an hour."""
    from fer_ros.perception import bag as bag_module
    monkeypatch.setattr(bag_module, 'MAX_GAP', 0.3)
    path = tmp_path / 'gap.mcap'
    raw_bag(path, cdr_images(small_frames), gap_after=1)
    start = time.monotonic()
    stamps, skipped, skips = replay(path, realtime=True)
    assert stamps == [0, 1, 2, 3, 4] and skipped == 0
    assert time.monotonic() - start < 2.0
    assert skips == ['bag gap.mcap: log times jump by 3600 s; replayed as 0.3 s']


def test_camera_node_replays_a_damaged_bag_and_stays_up(tmp_path, small_frames):
    import signal

    from processes import Process
    path = tmp_path / 'damaged.mcap'
    offsets = raw_bag(path, cdr_images(small_frames))
    data = bytearray(path.read_bytes())
    data[offsets[1] + 60:offsets[1] + 124] = bytes(64)
    path.write_bytes(bytes(data))
    camera = Process('camera_node', '--ros-args', '-p', f'source:={path}', '-p', 'loop:=false')
    camera.wait_for('ended (loop is false)')
    assert f'skipped the chunk at byte {offsets[1]}' in camera.output
    assert camera.alive() and camera.stop(signal.SIGINT) == 0, camera.output
    assert 'Traceback' not in camera.output
