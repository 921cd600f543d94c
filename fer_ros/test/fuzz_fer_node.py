"""make fuzz: send fer_node (a separate process, over real DDS) thousands of malformed and
hostile sensor_msgs/Image messages, and check it survives, keeps answering good frames,
keeps its logs bounded and its memory flat. Prints numbers; exits 1 if fer_node died or
stopped answering.

  .venv/bin/python fer_ros/test/fuzz_fer_node.py --messages 10000
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from fer_msgs.msg import FaceEmotionArray
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
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


def rss_mb(pid: int) -> float:
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
    return float('nan')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--messages', type=int, default=10_000)
    parser.add_argument('--rate', type=float, default=150.0, help='messages per second')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('ROS_DOMAIN_ID', str(40 + os.getpid() % 150))
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    prepare_process()
    rclpy.init()
    node = Node('fuzzer')
    answered: set[str] = set()
    node.create_subscription(FaceEmotionArray, 'emotions',
                             lambda m: answered.add(m.header.frame_id), 100)
    pub = node.create_publisher(Image, 'image', QoSProfile(
        depth=100, reliability=ReliabilityPolicy.RELIABLE))
    fer = Process('fer_node', '--ros-args', '-p', 'device:=cpu', '-p', 'image_depth:=100')
    fer.wait_for('listening on')
    while pub.get_subscription_count() == 0:
        rclpy.spin_once(node, timeout_sec=0.1)
    import skimage.data
    good = ndarray_to_image(np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1]), 'bgr8')
    rng = np.random.default_rng(args.seed)
    rss_start, lines_start = rss_mb(fer.proc.pid), len(fer.lines)
    t0 = start = time.monotonic()
    good_sent: list[str] = []
    for i in range(args.messages):
        if not fer.alive():
            break
        msg = good if i % 100 == 99 else fuzzed(rng, i)
        msg.header = Header(frame_id=f'm{i}')
        if msg is good:
            good_sent.append(msg.header.frame_id)
        pub.publish(msg)
        if msg is good:  # room to process it before the next message replaces it
            start += 0.15
        while (wait := start + (i + 1) / args.rate - time.monotonic()) > 0:
            rclpy.spin_once(node, timeout_sec=wait)
    elapsed = time.monotonic() - t0
    end = time.monotonic() + 5.0
    while time.monotonic() < end and fer.alive():
        rclpy.spin_once(node, timeout_sec=0.1)
    alive, rss_end = fer.alive(), rss_mb(fer.proc.pid) if fer.alive() else float('nan')
    if alive:  # a last good frame must still be answered
        good.header = Header(frame_id='final')
        deadline = time.monotonic() + 20.0
        while 'final' not in answered and time.monotonic() < deadline:
            pub.publish(good)
            rclpy.spin_once(node, timeout_sec=0.3)
    new_lines = fer.lines[lines_start:]
    code = fer.stop(signal.SIGINT) if alive else fer.proc.returncode
    good_answered = sum(f in answered for f in good_sent)
    print(f'messages sent        {args.messages} in {elapsed:.1f} s '
          f'({args.messages / elapsed:.0f}/s), {len(good_sent)} of them good frames')
    print(f'fer_node alive       {alive} (exit code {code} after SIGINT)')
    print(f'answered             {len(answered - {"final"})} messages, good frames '
          f'{good_answered}/{len(good_sent)}; final good frame answered: {"final" in answered}')
    print(f'memory (RSS)         {rss_start:.0f} MB -> {rss_end:.0f} MB')
    print(f'log lines            {len(new_lines)}, longest {max(map(len, new_lines), default=0)} '
          f'characters, forged [FATAL] lines {sum(ln.startswith("[FATAL]") for ln in new_lines)}, '
          f'escape bytes {sum(chr(27) in ln for ln in new_lines)}, '
          f'tracebacks {fer.output.count("Traceback")}')
    node.destroy_node()
    rclpy.try_shutdown()
    ok = alive and code == 0 and 'final' in answered and 'Traceback' not in fer.output
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
