"""fer_benchmark: per-stage latency of fer_node and end-to-end FPS, on this machine.

Stages (convert, detect, classify, publish, annotate) are timed inside a real
FerNode, in its own worker thread, publishing to a real subscriber; frames are sent
one at a time, each after the previous result arrived. End-to-end FPS is the rate
at which FaceEmotionArray messages arrive while a camera publishes faster than
fer_node can process (only the newest frame is processed). Then the cross-process rates of
fer_ros.bench.transport (camera_node and fer_node as two processes, 480p to 1080p).
Also the detector alone on 1080p and 4K frames of small faces, whole frame and tiled, and a
soak (fer_ros.bench.soak: six faces at 30 Hz with landmarks on for 15 minutes; RSS and p95
latency minute by minute). Prints numbers only; nothing is asserted.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
import torch
from fer_msgs.msg import FaceEmotionArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from fer_ros.models import DEFAULT_MODEL
from fer_ros.nodes.fer_node import FerNode
from fer_ros.perception.image_conversion import ndarray_to_image

STAGES = ('convert', 'detect', 'classify', 'publish', 'annotate')
ASTRONAUT_FACE = (173, 67, 103, 103)  # (x, y, w, h) in skimage's astronaut photo


def _inputs(media: Path) -> list[tuple[str, np.ndarray]]:
    import skimage.data
    astronaut = np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])
    canvas = np.full((480, 640, 3), 90, np.uint8)
    canvas[:, 80:560] = cv2.resize(astronaut, (480, 480), interpolation=cv2.INTER_AREA)
    images = [('astronaut 512x512', astronaut), ('astronaut 640x480', canvas)]
    for path in sorted(media.glob('faceapi_bbt*.jpg')):
        frame = cv2.imread(str(path))
        images.append((f'{path.stem} {frame.shape[1]}x{frame.shape[0]}', frame))
    return images


def _stats(values: list[float]) -> str:
    return f'{np.median(values):6.2f} / {np.percentile(values, 95):6.2f}'


def _spin_for(executor: SingleThreadedExecutor, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.01)


def _crowd(images: list[np.ndarray], width: int, height: int) -> np.ndarray:
    """The images at 45 % side by side, row after row, on a gray width x height canvas."""
    canvas, x, y, row = np.full((height, width, 3), 128, np.uint8), 0, 0, 0
    for image in images * 20:
        small = cv2.resize(image, None, fx=0.45, fy=0.45, interpolation=cv2.INTER_AREA)
        h, w = small.shape[:2]
        if x + w > width:
            x, y, row = 0, y + row, 0
        if y + h > height:
            break
        canvas[y:y + h, x:x + w], x, row = small, x + w, max(row, h)
    return canvas


def detection_cost(media: Path, repeats: int = 10) -> None:
    from fer_ros.perception.detection import FaceDetector
    from fer_ros.perception.tiling import TiledDetector

    photos = [frame for name, frame in _inputs(media) if name.startswith('faceapi_bbt')]
    photos = photos or [frame for _, frame in _inputs(media)[:1]]
    print('face detection alone, small faces (group photos at 45 %): faces found, median ms')
    with FaceDetector() as whole, TiledDetector(tile=640) as tiled:
        for width, height in ((1920, 1080), (3840, 2160)):
            rgb = np.ascontiguousarray(_crowd(photos, width, height)[:, :, ::-1])
            cells = []
            for detector in (whole, tiled):
                times = []
                for _ in range(repeats):
                    t = time.perf_counter()
                    faces = detector.detect(rgb)
                    times.append((time.perf_counter() - t) * 1e3)
                cells.append(f'{len(faces):3d} faces {np.median(times):7.1f} ms')
            print(f'{width}x{height}: whole frame {cells[0]}; detection_tile 640 {cells[1]}')


def landmark_cost(media: Path, repeats: int = 50) -> None:
    """What the landmarks parameter adds per face: the face mesh, eyes, head pose, message."""
    from fer_msgs.msg import FaceEmotion

    from fer_ros.nodes.messages import with_state
    from fer_ros.perception.detection import FaceDetector
    from fer_ros.perception.eyes import eye_openness
    from fer_ros.perception.face_state import FaceState
    from fer_ros.perception.head_pose import camera_matrix, head_pose
    from fer_ros.perception.landmarks import FaceLandmarker

    landmarker = FaceLandmarker()
    parts: dict[str, list[float]] = {'face mesh (crop, LiteRT)': [], 'eye openness': [],
                                     'head pose (solvePnP)': [], 'message fields': []}
    with FaceDetector() as detector:
        for _, frame in _inputs(media):
            faces = detector.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            camera = camera_matrix(frame.shape[1], frame.shape[0], 60.0)
            for face in faces:
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    points = landmarker.mesh(frame, face).points
                    t1 = time.perf_counter()
                    eyes = eye_openness(points)
                    t2 = time.perf_counter()
                    pose = head_pose(points, camera)
                    t3 = time.perf_counter()
                    with_state(FaceEmotion(), FaceState(points, eyes, 0, 0.0, pose, True))
                    t4 = time.perf_counter()
                    for part, ms in zip(parts.values(), (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                        part.append(ms * 1e3)
    total = sum(np.median(v) for v in parts.values())
    print(f'landmarks per face, one thread, median ms over {len(parts["eye openness"])} runs: '
          + ', '.join(f'{k} {np.median(v):.2f}' for k, v in parts.items())
          + f'; total {total:.2f}')


def rep155_cost(media: Path, repeats: int = 50) -> None:
    """What hri: true adds per face beyond the fer_msgs output (ROS-free parts: the cropped
    and aligned images, the 70 landmarks, the face and gaze frames)."""
    from fer_ros.perception import rep155
    from fer_ros.perception.detection import FaceDetector
    from fer_ros.perception.head_pose import camera_matrix, head_pose
    from fer_ros.perception.landmarks import FaceLandmarker

    landmarker = FaceLandmarker()
    parts: dict[str, list[float]] = {'cropped + aligned 128 px': [], '70 landmarks': [],
                                     'face + gaze frames': []}
    with FaceDetector() as detector:
        for _, frame in _inputs(media):
            camera = camera_matrix(frame.shape[1], frame.shape[0], 60.0)
            for face in detector.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)):
                points = landmarker.mesh(frame, face).points
                pose = head_pose(points, camera)
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    rep155.face_crops(frame, face.box, face.keypoints)
                    t1 = time.perf_counter()
                    rep155.facial_landmarks(points, frame.shape[1], frame.shape[0])
                    t2 = time.perf_counter()
                    if pose is not None:
                        rep155.quaternion(rep155.face_frames(pose)[1])
                    t3 = time.perf_counter()
                    for part, ms in zip(parts.values(), (t1 - t0, t2 - t1, t3 - t2)):
                        part.append(ms * 1e3)
    print(f'hri: true per face, one thread, median ms over {len(parts["70 landmarks"])} runs: '
          + ', '.join(f'{k} {np.median(v):.3f}' for k, v in parts.items()))


def backend_cost(model: str, repeats: int = 200) -> None:
    """Forward pass alone per backend, one thread, as make bench's TFLite reference is timed."""
    from fer_ros.learning.scoring import lowest_median_ms
    from fer_ros.models import ModelError
    from fer_ros.models.onnx_backend import RUNTIMES
    from fer_ros.perception.classifier import ExpressionClassifier

    torch.set_num_threads(1)
    print(f'classifier forward of {model}, one thread, ms per face (lowest of 3 medians)')
    print(f"{'backend':28s} {'batch 1':>8s} {'batch 8':>8s} {'extra face':>10s}")
    for backend in RUNTIMES:
        try:
            clf = ExpressionClassifier(model, 'cpu', backend=backend)
        except ModelError as exc:
            print(f'{backend:28s} not available: {exc}')
            continue
        member = clf.model.members[0]
        size, channels = member.spec.input.size, member.spec.input.channels
        run = (clf.onnx[0] if clf.onnx else
               lambda x: member.module(torch.from_numpy(x).contiguous(
                   memory_format=torch.channels_last)))
        ms = {}
        for batch in (1, 8):
            x = np.zeros((batch, channels, size, size), np.float32)
            with torch.inference_mode():
                ms[batch] = lowest_median_ms(lambda: run(x), repeats)
        print(f'{backend:28s} {ms[1]:8.3f} {ms[8] / 8:8.3f} {(ms[8] - ms[1]) / 7:10.3f}')


def plot(rows: list[tuple[str, int, dict[str, float]]], title: str, path: Path) -> None:
    """Median ms per stage of each input, stacked, inputs by faces then name."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = sorted(rows, key=lambda r: (r[1], r[0]))
    figure, axes = plt.subplots(figsize=(9, 4.5))
    bottom = np.zeros(len(rows))
    for stage in STAGES:
        values = np.array([r[2][stage] for r in rows])
        axes.bar(range(len(rows)), values, bottom=bottom, label=stage)
        bottom += values
    labels = ['\n'.join([*name.split(' '), f'{faces} face(s)']) for name, faces, _ in rows]
    axes.set_xticks(range(len(rows)), labels, fontsize=8)
    axes.set_ylabel('ms per frame (median)')
    axes.set_title(title, fontsize=9)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    print(f'plot written to {path}')


def run(frames: int, media: Path, model: str, device: str, tta_flip: bool,
        camera_fps: float, plot_path: Path | None = None) -> None:
    context = rclpy.Context()
    rclpy.init(context=context)
    executor = SingleThreadedExecutor(context=context)
    node = FerNode(context=context, parameter_overrides=[
        Parameter('model', value=model), Parameter('device', value=device),
        Parameter('tta_flip', value=tta_flip)],
        cli_args=['--ros-args', '-r', 'image:=bench_image'])
    sink = Node('bench_sink', context=context)
    received: list[float] = []
    sink.create_subscription(FaceEmotionArray, 'emotions', lambda m: received.append(
        time.perf_counter()), 10)
    sink.create_subscription(Image, 'image_annotated', lambda m: None, 1)
    source = Node('bench_source', context=context)
    pub = source.create_publisher(Image, 'bench_image', qos_profile_sensor_data)
    for n in (node, sink, source):
        executor.add_node(n)
    _spin_for(executor, 1.0)  # discovery

    # Classifier alone first, before fer_node's worker thread starts its own torch threads.
    inputs = _inputs(media)
    clf, astronaut = node.pipeline.classifier, inputs[0][1]
    torch.set_num_threads(node.cpu_threads)
    forward = []
    for batch in (1, 8):
        times = []
        for _ in range(50):
            t = time.perf_counter()
            clf.predict(astronaut, [ASTRONAUT_FACE] * batch)
            times.append((time.perf_counter() - t) * 1e3)
        forward.append(f'classify (crop, preprocess, forward), {batch} face(s): '
                       f'{np.median(times):.2f} ms ({np.median(times) / batch:.2f} ms per face)')

    print(f'fer_node on {clf.device} with {clf.backend}, model {model}, tta_flip {tta_flip}, '
          f'cpu_threads {node.cpu_threads}, {frames} frames per image')
    print('per stage, median / p95 in ms')
    print(f"{'input':28s} faces " + ' '.join(f'{s:>15s}' for s in STAGES) +
          f" {'total':>15s} {'node FPS':>8s} {'DDS FPS':>8s}")
    rows, stages = [], []
    for name, frame in inputs:
        msg = ndarray_to_image(frame, 'bgr8', Header(frame_id='camera_frame'))
        for count in (5, frames):  # warm-up, then timed
            node.timings.clear()
            for _ in range(count):  # one frame at a time through the real subscription
                done = len(node.timings) + 1
                pub.publish(msg)
                end = time.monotonic() + 5.0
                while len(node.timings) < done and time.monotonic() < end:
                    executor.spin_once(timeout_sec=0.01)
                _spin_for(executor, 0.005)  # deliver the outputs to the sink
        timings = list(node.timings)
        per_stage = {s: [t.stages_ms.get(s, 0.0) for t in timings] for s in STAGES}
        totals = [sum(t.stages_ms.values()) for t in timings]
        # End to end over DDS: a camera faster than fer_node (newest frame wins).
        timer = source.create_timer(1.0 / camera_fps, lambda: pub.publish(msg))
        received.clear()
        start = time.perf_counter()
        _spin_for(executor, 3.0)
        source.destroy_timer(timer)
        _spin_for(executor, 0.3)  # let the last frame finish
        arrivals = [t for t in received if t > start + 0.5]
        dds_fps = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 2 else 0
        faces = timings[-1].faces
        rows.append((faces, float(np.median(totals))))
        stages.append((name, faces, {k: float(np.median(v)) for k, v in per_stage.items()}))
        print(f'{name:28s} {faces:5d} ' + ' '.join(_stats(per_stage[s]) for s in STAGES) +
              f' {_stats(totals)} {1000 / np.median(totals):8.1f} {dds_fps:8.1f}')

    counts, totals = np.array(rows).T
    if len(set(counts)) > 1:
        slope = np.polyfit(counts, totals, 1)[0]
        print(f'end-to-end cost per extra face (least-squares slope over inputs): {slope:.2f} ms')
    print('\n'.join(forward))
    if plot_path is not None:
        plot(stages, f'fer_node, {model} on {clf.device} with {clf.backend}, one frame at a '
             'time', plot_path)
    for n in (source, sink, node):
        executor.remove_node(n)
        n.destroy_node()
    rclpy.try_shutdown(context=context)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--frames', type=int, default=100, help='frames timed per input')
    parser.add_argument('--media', type=Path, default=Path.cwd().parent / 'shared' / 'media',
                        help='folder with faceapi_bbt*.jpg group photos (default: %(default)s)')
    parser.add_argument('--model', default=DEFAULT_MODEL)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--tta-flip', action='store_true', help='fer_node tta_flip parameter')
    parser.add_argument('--camera-fps', type=float, default=200.0,
                        help='publishing rate of the simulated camera for the DDS FPS')
    parser.add_argument('--plot', type=Path, help='also draw the per-stage times into this PNG')
    parser.add_argument('--no-cross-process', action='store_true',
                        help='skip the cross-process rates (about 3 minutes)')
    parser.add_argument('--soak-minutes', type=float, default=15.0,
                        help='length of the soak (six faces, 30 Hz, landmarks on); 0 skips it')
    args = parser.parse_args(argv)
    run(args.frames, args.media, args.model, args.device, args.tta_flip, args.camera_fps,
        args.plot)
    detection_cost(args.media)
    landmark_cost(args.media)
    rep155_cost(args.media)
    backend_cost(args.model)
    if not args.no_cross_process:
        from fer_ros.bench import transport
        transport.run()
    if args.soak_minutes > 0:
        from fer_ros.bench import soak
        soak.run(args.media, args.soak_minutes)


if __name__ == '__main__':
    main()
