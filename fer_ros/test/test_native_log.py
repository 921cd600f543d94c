"""native_stderr_silenced drops fd-2 output, and overlapping blocks in two threads restore it."""
import os
import threading

from fer_ros.perception.native_log import native_stderr_silenced


def test_overlapping_blocks_restore_stderr(capfd):
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with native_stderr_silenced():
            first_in.set()
            second_in.wait(5)
            os.write(2, b'dropped-1\n')
        first_out.set()

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(5)
    with native_stderr_silenced():  # starts inside the first block, ends after it
        second_in.set()
        first_out.wait(5)
        os.write(2, b'dropped-2\n')
    thread.join()
    os.write(2, b'kept\n')
    err = capfd.readouterr().err
    assert 'dropped' not in err and 'kept' in err


def test_a_detector_prints_nothing_after_loading():
    """LiteRT logged a notice at the first frame whose input tensor it found misaligned; the
    node's frames come from OpenCV (cvtColor), in sizes cameras give."""
    import subprocess
    import sys
    code = ('import cv2, numpy as np\n'
            'from fer_ros.perception.detection import FaceDetector\n'
            "for model in ('full_range', 'short_range'):\n"
            '    with FaceDetector(model) as detector:\n'
            "        print('loaded', flush=True)\n"
            '        for h, w in ((384, 384), (480, 640), (720, 1280), (1080, 1920), (333, 517),\n'
            '                     (512, 512), (240, 320)):\n'
            '            bgr = np.full((h, w, 3), 100, np.uint8)\n'
            '            detector.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))\n')
    for _ in range(3):  # where memory lies varies from process to process
        done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0 and done.stdout == 'loaded\nloaded\n'
        assert done.stderr == ''
