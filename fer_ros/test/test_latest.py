import threading
import time

from fer_ros.nodes.latest import LatestWorker


def test_only_the_newest_item_is_processed_after_a_busy_spell():
    seen, release = [], threading.Event()

    def handler(item):
        if item == 0:
            release.wait(5)
        seen.append(item)

    worker = LatestWorker(handler)
    worker.submit(0)
    time.sleep(0.05)
    for i in range(1, 10):  # arrive while item 0 is being processed
        worker.submit(i)
    release.set()
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    assert seen == [0, 9]
    assert worker.dropped == 8


def test_max_rate_spaces_processing():
    starts = []
    worker = LatestWorker(lambda item: starts.append(time.monotonic()), max_rate=20.0)
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        worker.submit(1)
        time.sleep(0.002)
    worker.stop()
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert len(starts) <= 12 and min(gaps) >= 0.045
