"""make fuzz: send fer_node (a separate process, over real DDS) thousands of malformed and
hostile messages in three families (raw images, compressed bombs, poisoned camera_info), and
check it survives, keeps answering good frames, keeps its logs bounded and its memory flat.
Prints numbers per family, the peak memory growth among them; exits 1 if fer_node died or
stopped answering.

  .venv/bin/python fer_ros/test/fuzz_fer_node.py --messages 10000
"""
from __future__ import annotations

import argparse
import os
import signal
import struct
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
from fer_msgs.msg import FaceEmotionArray
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

sys.path.insert(0, str(Path(__file__).parent))
from processes import Process  # noqa: E402

from fer_ros.nodes.spin import prepare_process  # noqa: E402
from fer_ros.perception.image_conversion import ENCODINGS, ndarray_to_image  # noqa: E402

CRASH_SHAPES = [(1, 32767), (32767, 1), (2, 40000), (100, 40000)]
WEIRD_ENCODINGS = ['', 'yuv422', 'bgr8\n[FATAL] forged', '\x1b[2J', 'x' * 100_000, 'bgr8 ',
                   'BGR8', '16SC1', 'bayer_rggb8', '\udcff'.encode('utf-8', 'surrogatepass')
                   .decode('latin-1')]


def fuzzed(rng: np.random.Generator, i: int) -> Image:
    """One hostile message: inconsistent sizes, steps, data, encodings, shapes."""
    kind = rng.integers(6)
    if kind == 0:  # frames that abort MediaPipe's OpenCV
        h, w = CRASH_SHAPES[i % len(CRASH_SHAPES)]
        return Image(height=h, width=w, encoding='mono8', step=w, data=bytes(h * w))
    encoding = (rng.choice(list(ENCODINGS)) if rng.random() < 0.7
                else WEIRD_ENCODINGS[rng.integers(len(WEIRD_ENCODINGS))])
    h, w = (int(v) for v in rng.choice([0, 1, 2, 3, 7, 64, 480, 640, 4096, 2**31 - 1], 2))
    if kind == 1:  # claims a huge image, carries a few bytes
        return Image(height=h, width=w, encoding=encoding, step=int(rng.integers(0, 2**32)),
                     data=bytes(int(rng.integers(0, 64))))
    h, w = int(rng.integers(1, 96)), int(rng.integers(1, 96))
    channels = ENCODINGS[encoding].channels * ENCODINGS[encoding].dtype.itemsize \
        if encoding in ENCODINGS else 3
    step = w * channels + int(rng.choice([0, 0, 0, 1, -1, 7, -w]))
    size = max(step * h + int(rng.choice([0, 0, -1, 5, -step])), 0)
    data = rng.integers(0, 256, size, np.uint8).tobytes()
    return Image(height=h, width=w, encoding=encoding, step=max(step, 0), data=data,
                 is_bigendian=int(rng.integers(2)))


def status_kb(pid: int, field: str) -> int:
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith(field + ':'):
            return int(line.split()[1])
    return 0


def bombs() -> list[CompressedImage]:
    """Valid images that compress 1000:1 (each cost 0.9-1.5 GB and 2-5 s before the pixel
    budget), headers that lie, and damaged payloads."""
    from payloads import png_of_zeros
    jpeg = cv2.imencode('.jpg', np.zeros((8192, 8192), np.uint8))[1].tobytes()
    small = cv2.imencode('.jpg', np.zeros((64, 64, 3), np.uint8))[1].tobytes()
    at = small.index(b'\xff\xc0') + 5
    claim = small[:at] + struct.pack('>HH', 8192, 8192) + small[at + 4:]
    made = [(png_of_zeros(8192, 8192), 'png'), (png_of_zeros(8192, 8192, 16, 6),
                                                 'rgba16; png compressed rgba16'),
            (jpeg, 'jpeg'), (png_of_zeros(5000, 5000), 'png'), (claim, 'jpeg'),
            (small[:len(small) // 2], 'jpeg'), (bytes(1000), 'png')]
    return [CompressedImage(format=fmt, data=data) for data, fmt in made]


def poisoned_infos(rng: np.random.Generator) -> list[CameraInfo]:
    nan, inf = float('nan'), float('inf')
    ks = [[600, 0, nan, 0, 600, 256, 0, 0, 1], [600, 0, 256, 0, inf, 256, 0, 0, 1],
          [1e308, 0, 256, 0, 1e308, 256, 0, 0, 1], [1e-300, 0, 256, 0, 1e-300, 256, 0, 0, 1],
          [-600, 0, 256, 0, -600, 256, 0, 0, 1], [600, 0, 256, 0, 600, 256, 5, 5, 0]]
    infos = [CameraInfo(width=512, height=512, k=[float(v) for v in k]) for k in ks]
    infos.append(CameraInfo(width=1, height=1, k=[600.0, 0, 256, 0, 600, 256, 0, 0, 1]))
    infos += [CameraInfo(width=int(rng.integers(0, 5000)), height=int(rng.integers(0, 5000)),
                         k=[float(v) for v in rng.normal(0, 1e6, 9)]) for _ in range(20)]
    return infos


class Fuzzer(Node):
    def __init__(self):
        super().__init__('fuzzer')
        self.answered: set[str] = set()
        self.create_subscription(FaceEmotionArray, 'emotions',
                                 lambda m: self.answered.add(m.header.frame_id), 100)
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.raw = self.create_publisher(Image, 'image', reliable)
        self.compressed = self.create_publisher(CompressedImage, 'image/compressed', reliable)
        self.info = self.create_publisher(CameraInfo, 'camera_info', reliable)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            rclpy.spin_once(self, timeout_sec=left)


def run_family(node: Fuzzer, family: str, messages: int, rate: float, seed: int) -> bool:
    """Send one family to a fresh fer_node; print its numbers; True if fer_node held."""
    args = {'raw': (), 'bomb': ('-p', 'image_transport:=compressed'),
            'camera_info': ('-p', 'landmarks:=true')}[family]
    fer = Process('fer_node', '--ros-args', '-p', 'device:=cpu', '-p', 'image_depth:=100',
                  *args)
    fer.wait_for('listening on')
    publisher = node.compressed if family == 'bomb' else node.raw
    while publisher.get_subscription_count() == 0:
        node.spin_for(0.1)
    import skimage.data
    bgr = np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])
    good = (CompressedImage(format='bgr8; jpeg compressed bgr8',
                            data=cv2.imencode('.jpg', bgr)[1].tobytes())
            if family == 'bomb' else ndarray_to_image(bgr, 'bgr8'))
    rng = np.random.default_rng(seed)
    hostile = bombs() if family == 'bomb' else poisoned_infos(rng) if family == 'camera_info' \
        else None
    every = {'raw': 100, 'bomb': 10, 'camera_info': 5}[family]  # one good frame in so many
    node.spin_for(1.0)
    Path(f'/proc/{fer.proc.pid}/clear_refs').write_text('5')  # peak RSS from here
    rss_start, lines_start = status_kb(fer.proc.pid, 'VmRSS'), len(fer.lines)
    t0 = start = time.monotonic()
    good_sent: list[str] = []
    for i in range(messages):
        if not fer.alive():
            break
        is_good = i % every == every - 1
        msg = good if is_good else hostile[i % len(hostile)] if hostile else fuzzed(rng, i)
        if isinstance(msg, CameraInfo):
            node.info.publish(msg)
        else:
            msg.header = Header(frame_id=f'm{i}')
            publisher.publish(msg)
        if is_good:
            good_sent.append(f'm{i}')
            start += 0.15  # room to process it before the next message replaces it
        while (wait := start + (i + 1) / rate - time.monotonic()) > 0:
            node.spin_for(wait)
    elapsed = time.monotonic() - t0
    node.spin_for(5.0)
    alive = fer.alive()
    peak_mb = (status_kb(fer.proc.pid, 'VmHWM') - rss_start) / 1024 if alive else float('nan')
    rss_end = status_kb(fer.proc.pid, 'VmRSS') / 1024 if alive else float('nan')
    if alive:  # a last good frame must still be answered
        good.header = Header(frame_id='final')
        deadline = time.monotonic() + 20.0
        while 'final' not in node.answered and time.monotonic() < deadline:
            publisher.publish(good)
            node.spin_for(0.3)
    new_lines = fer.lines[lines_start:]
    code = fer.stop(signal.SIGINT) if alive else fer.proc.returncode
    good_answered = sum(f in node.answered for f in good_sent)
    print(f'--- {family}: {messages} messages in {elapsed:.1f} s '
          f'({messages / elapsed:.0f}/s), {len(good_sent)} of them good frames')
    print(f'fer_node alive       {alive} (exit code {code} after SIGINT)')
    print(f'answered             good frames {good_answered}/{len(good_sent)}; final good frame '
          f'answered: {"final" in node.answered}')
    print(f'memory (RSS)         {rss_start / 1024:.0f} MB -> {rss_end:.0f} MB; peak growth '
          f'while fuzzing {peak_mb:.0f} MB (the most any message cost)')
    print(f'log lines            {len(new_lines)}, longest {max(map(len, new_lines), default=0)} '
          f'characters, forged [FATAL] lines {sum(ln.startswith("[FATAL]") for ln in new_lines)}, '
          f'escape bytes {sum(chr(27) in ln for ln in new_lines)}, '
          f'tracebacks {fer.output.count("Traceback")}')
    final = 'final' in node.answered
    node.answered.clear()
    return alive and code == 0 and final and good_answered >= 0.8 * len(good_sent) and \
        'Traceback' not in fer.output


FAMILIES = {'raw': 'malformed sensor_msgs/Image (sizes, steps, encodings, shapes)',
            'bomb': 'compressed images that decode to 64 MP, headers that lie, damage',
            'camera_info': 'implausible intrinsics beside frames, with landmarks on'}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--messages', type=int, default=10_000, help='of the raw family')
    parser.add_argument('--rate', type=float, default=150.0, help='raw messages per second')
    parser.add_argument('--family', choices=[*FAMILIES, 'all'], default='all')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('ROS_DOMAIN_ID', str(40 + os.getpid() % 150))
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    prepare_process()
    rclpy.init()
    node = Fuzzer()
    plan = {'raw': (args.messages, args.rate), 'bomb': (300, 20.0),
            'camera_info': (1000, 30.0)}
    ok = True
    for family in FAMILIES if args.family == 'all' else [args.family]:
        print(f'{family}: {FAMILIES[family]}', flush=True)
        ok = run_family(node, family, *plan[family], args.seed) and ok
    node.destroy_node()
    rclpy.try_shutdown()
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
