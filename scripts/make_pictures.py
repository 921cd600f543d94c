"""The pictures of docs/, from scikit-image's astronaut photo (NASA, public domain):
annotated.png, what image_annotated shows (fer_node's own pipeline, landmarks on), and
label_page.png, fer_label's page in headless chromium on faces fer_record cut from it
(needs Debian's chromium and chromium-driver, and selenium).

  .venv/bin/python scripts/make_pictures.py
"""
import shutil
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from fer_ros.perception.annotate import annotate
from fer_ros.perception.classifier import ExpressionClassifier
from fer_ros.perception.face_state import FaceStates
from fer_ros.perception.landmarks import FaceLandmarker
from fer_ros.perception.pipeline import FerPipeline
from fer_ros.perception.tiling import make_detector

IMAGES = Path(__file__).resolve().parents[1] / 'docs' / 'images'
OUT = IMAGES / 'annotated.png'


def label_page() -> None:
    from selenium import webdriver
    from selenium.webdriver.support.ui import WebDriverWait

    from fer_ros.learning.label import LabelStore, make_server
    from fer_ros.learning.record import record

    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    with tempfile.TemporaryDirectory() as scratch:
        shots = Path(scratch) / 'shots'
        shots.mkdir()
        for i, scale in enumerate((1.0, 0.9, 0.8, 0.7)):  # two faces a frame: her and mirrored
            small = cv2.resize(photo, None, fx=scale, fy=scale)
            cv2.imwrite(str(shots / f'{i}.png'), np.hstack([small, small[:, ::-1]]))
        with make_detector('full_range', 0.3, 0, 0) as detector:
            record(str(shots), Path(scratch) / 'data', FerPipeline(
                detector, ExpressionClassifier(backend='auto')), min_change=0.0, progress=False)
        server = make_server(LabelStore(Path(scratch) / 'data'))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        options = webdriver.ChromeOptions()
        for flag in ('--headless=new', '--no-sandbox', '--disable-gpu',
                     '--disable-dev-shm-usage', '--window-size=1100,700'):
            options.add_argument(flag)
        options.binary_location = shutil.which('chromium')
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(
            executable_path=shutil.which('chromedriver')))
        try:
            driver.get(f'http://127.0.0.1:{server.server_port}')
            WebDriverWait(driver, 20).until(
                lambda d: d.execute_script('return document.body.dataset.ready'))
            driver.find_element('tag name', 'body').send_keys('4')  # the first face: happy
            time.sleep(1.0)
            driver.save_screenshot(str(IMAGES / 'label_page.png'))
        finally:
            driver.quit()
            server.shutdown()
            server.server_close()
    print(f'{IMAGES / "label_page.png"}')


def main() -> None:
    frame = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    with make_detector('full_range', 0.3, 0, 0) as detector:
        pipeline = FerPipeline(detector, ExpressionClassifier(backend='auto'),
                               states=FaceStates(FaceLandmarker()))
        for _ in range(3):  # a confirmed track, as a live stream has it
            result = pipeline.process(frame)
    picture = cv2.resize(annotate(frame, result), (384, 384), interpolation=cv2.INTER_AREA)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(OUT), picture, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f'{OUT}: {", ".join(result.class_names[f.label_index] for f in result.faces)}')
    label_page()


if __name__ == '__main__':
    main()
