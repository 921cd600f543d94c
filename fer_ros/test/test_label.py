"""fer_label: the labelling server's API, and its page in a real headless browser."""
import json
import shutil
import threading
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from fer_ros.learning.label import REJECT, LabelStore, make_server
from fer_ros.learning.record import record
from fer_ros.perception.classifier import ExpressionClassifier
from fer_ros.perception.detection import FaceDetector
from fer_ros.perception.pipeline import FerPipeline


@pytest.fixture(scope='module')
def recorded(tmp_path_factory, astronaut_bgr):
    """A fer_record dataset: three frames of two faces (the astronaut and her mirror image)."""
    root = tmp_path_factory.mktemp('label')
    shots = root / 'shots'
    shots.mkdir()
    pair = np.hstack([astronaut_bgr, astronaut_bgr[:, ::-1]])
    for i in range(3):
        cv2.imwrite(str(shots / f'{i}.png'), pair)
    with FaceDetector() as detector:
        record(str(shots), root / 'data', FerPipeline(detector, ExpressionClassifier()),
               min_change=0.0, progress=False)
    return root / 'data'


@pytest.fixture
def dataset(recorded, tmp_path):
    return shutil.copytree(recorded, tmp_path / 'data')


@pytest.fixture
def server(dataset):
    server = make_server(LabelStore(dataset))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_port}'
    server.shutdown()
    server.server_close()


def call(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(
            url, data, {'Content-Type': 'application/json'}), timeout=10) as response:
        return json.loads(response.read())


def status(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data), timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def saved(dataset):
    return json.loads((dataset / 'labels.json').read_text())


def test_label_a_face_a_track_and_undo(server, dataset):
    state = call(f'{server}/api/state')
    items = state['items']
    assert len(items) == 6 and {i['track'] for i in items} == {0, 1}
    assert 'happy' in state['classes'] and all(i['label'] is None for i in items)
    first, track = items[0]['crop'], [i['crop'] for i in items if i['track'] == 1]
    counts = call(f'{server}/api/label', {'crops': [first], 'label': 'happy'})
    assert counts['labelled'] == 1 and counts['per_label']['happy'] == 1
    assert saved(dataset) == {first: 'happy'}
    call(f'{server}/api/label', {'crops': track, 'label': REJECT})
    assert saved(dataset) == {first: 'happy', **{c: REJECT for c in track}}
    call(f'{server}/api/undo', {})  # the whole track at once
    assert saved(dataset) == {first: 'happy'}
    call(f'{server}/api/label', {'crops': [first], 'label': None})
    assert saved(dataset) == {}
    call(f'{server}/api/undo', {})
    assert saved(dataset) == {first: 'happy'}
    assert LabelStore(dataset).labels == {first: 'happy'}  # what a restart reads
    assert not list(dataset.glob('*.tmp'))


def test_bad_requests_are_refused(server, dataset):
    crop = call(f'{server}/api/state')['items'][0]['crop']
    assert status(f'{server}/api/label', {'crops': [crop], 'label': 'bored'}) == 400
    assert status(f'{server}/api/label', {'crops': ['../secret.png'], 'label': 'happy'}) == 400
    assert status(f'{server}/api/label', {'label': 'happy'}) == 400
    assert status(f'{server}/api/other', {}) == 404
    for path in ('/files/index.jsonl', '/files/../data/index.jsonl', '/files/%2e%2e/x'):
        assert status(f'{server}{path}') == 404, path
    assert status(f'{server}/files/{crop}') == 200
    assert not (dataset / 'labels.json').exists()


def browser():
    webdriver = pytest.importorskip('selenium.webdriver')
    if not (shutil.which('chromium') and shutil.which('chromedriver')):
        pytest.skip("needs Debian's chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    for flag in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'):
        options.add_argument(flag)
    options.binary_location = shutil.which('chromium')
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(
        executable_path=shutil.which('chromedriver')))


def test_the_page_labels_with_keys_in_a_real_browser(server, dataset):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser()
    try:
        driver.get(server)
        WebDriverWait(driver, 20).until(
            lambda d: d.execute_script('return document.body.dataset.ready'))
        state = call(f'{server}/api/state')
        crops = [i['crop'] for i in state['items']]
        body = driver.find_element(By.TAG_NAME, 'body')

        def after(keys, expected):
            body.send_keys(keys)
            WebDriverWait(driver, 10).until(lambda d: (dataset / 'labels.json').exists()
                                            and saved(dataset) == expected)

        happy = state['classes'].index('happy') + 1
        after(str(happy), {crops[0]: 'happy'})
        after('\ue007', {crops[0]: 'happy', crops[1]: state['items'][1]['prediction']})
        track = [i['crop'] for i in state['items'] if i['track'] == state['items'][2]['track']]
        before = saved(dataset)
        after('tx', {**before, **{c: REJECT for c in track}})
        after('u', before)
        progress = driver.find_element(By.ID, 'progress').text
        assert progress == f'{len(before)} / {len(crops)} labelled'
        images = driver.find_elements(By.CSS_SELECTOR, '.tile img')
        assert len(images) == 6 and all(driver.execute_script(
            'return arguments[0].naturalWidth', img) == 128 for img in images)
    finally:
        driver.quit()


def test_a_folder_without_a_dataset_is_a_clear_error(tmp_path, capsys):
    from fer_ros.learning.label import main
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path)])
    assert exit_.value.code == 1 and 'record a dataset with fer_record' in capsys.readouterr().err
