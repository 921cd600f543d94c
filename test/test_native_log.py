"""native_stderr_silenced drops fd-2 output, and overlapping blocks in two threads restore it."""
import os
import threading

from fer_ros.native_log import native_stderr_silenced


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
    """LiteRT logged a notice on the first frame whose buffer was not 64-byte aligned."""
    import subprocess
    import sys
    code = ('import numpy as np\n'
            'from fer_ros.detection import FaceDetector\n'
            'memory = np.zeros(1080 * 1920 * 3 + 64, np.uint8)\n'
            "for model in ('full_range', 'short_range'):\n"
            '    with FaceDetector(model) as detector:\n'
            "        print('loaded', flush=True)\n"
            '        for offset in range(0, 64, 8):  # every misalignment numpy can give\n'
            '            for h, w in ((384, 384), (480, 640), (1080, 1920)):\n'
            '                frame = memory[offset:offset + h * w * 3].reshape(h, w, 3)\n'
            '                detector.detect(frame)\n'
            '                detector.detect(frame[:, ::2])  # not contiguous\n')
    for _ in range(3):  # where memory lies varies from process to process
        done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0 and done.stdout == 'loaded\nloaded\n'
        assert done.stderr == ''
