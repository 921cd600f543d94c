"""fer_label: the labelling server's API, and its page in a real headless browser."""
import http.client
import json
import shutil
import threading
import time

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
    yield server
    server.shutdown()
    server.server_close()


def request(server, method, path, body=None, headers=None, client='a'):
    """(status, parsed JSON or raw bytes) of a request with the page's headers, and these."""
    connection = http.client.HTTPConnection('127.0.0.1', server.server_port, timeout=20)
    sent = {'Host': f'127.0.0.1:{server.server_port}', 'X-Fer-Label-Token': server.token,
            'X-Fer-Label-Client': client}
    if body is not None:
        body = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent.update({'Content-Type': 'application/json', 'Content-Length': str(len(body))})
    sent.update(headers or {})
    connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for name, value in sent.items():
        if value is not None:
            connection.putheader(name, value)
    connection.endheaders(body)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    kind = response.getheader('Content-Type', '')
    return response.status, json.loads(data) if kind == 'application/json' else data


def call(server, path, body=None, client='a'):
    code, value = request(server, 'GET' if body is None else 'POST', path, body, client=client)
    assert code == 200, value
    return value


def status(server, path, body=None, **headers):
    return request(server, 'GET' if body is None else 'POST', path, body, headers)[0]


def saved(dataset):
    return json.loads((dataset / 'labels.json').read_text())


def test_label_a_face_a_track_and_undo(server, dataset):
    state = call(server, '/api/state')
    items = state['items']
    assert len(items) == 6 and {i['track'] for i in items} == {0, 1}
    assert 'happy' in state['classes'] and all(i['label'] is None for i in items)
    first, track = items[0]['crop'], [i['crop'] for i in items if i['track'] == 1]
    counts = call(server, '/api/label', {'crops': [first], 'label': 'happy'})
    assert counts['labelled'] == 1 and counts['per_label']['happy'] == 1
    assert saved(dataset) == {first: 'happy'}
    call(server, '/api/label', {'crops': track, 'label': REJECT})
    assert saved(dataset) == {first: 'happy', **{c: REJECT for c in track}}
    call(server, '/api/undo', {})  # the whole track at once
    assert saved(dataset) == {first: 'happy'}
    call(server, '/api/label', {'crops': [first], 'label': None})
    assert saved(dataset) == {}
    call(server, '/api/undo', {})
    assert saved(dataset) == {first: 'happy'}
    assert LabelStore(dataset).labels == {first: 'happy'}  # what a restart reads
    assert not list(dataset.glob('*.tmp'))


def test_bad_requests_are_refused(server, dataset):
    crop = call(server, '/api/state')['items'][0]['crop']
    assert status(server, '/api/label', {'crops': [crop], 'label': 'bored'}) == 400
    assert status(server, '/api/label', {'crops': ['../secret.png'], 'label': 'happy'}) == 400
    assert status(server, '/api/label', {'label': 'happy'}) == 400
    assert status(server, '/api/other', {}) == 404
    for path in ('/files/index.jsonl', '/files/../data/index.jsonl', '/files/%2e%2e/x'):
        assert status(server, path) == 404, path
    assert status(server, f'/files/{crop}') == 200
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
        driver.get(f'http://127.0.0.1:{server.server_port}')
        WebDriverWait(driver, 20).until(
            lambda d: d.execute_script('return document.body.dataset.ready'))
        state = call(server, '/api/state')
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
        WebDriverWait(driver, 10).until(lambda d: d.execute_script(
            "return document.getElementById('progress').textContent") ==
            f'{len(before)} / {len(crops)} labelled')
        WebDriverWait(driver, 10).until(lambda d: d.execute_script(  # one atomic read
            "return Array.from(document.querySelectorAll('.tile img'), i => i.naturalWidth)")
            == [128] * 6)
    finally:
        driver.quit()


def test_a_folder_without_a_dataset_is_a_clear_error(tmp_path, capsys):
    from fer_ros.learning.label import main
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path)])
    assert exit_.value.code == 1 and 'record a dataset with fer_record' in capsys.readouterr().err


def test_cross_site_requests_and_dns_rebinding_are_refused(server, dataset):
    """Any web page could set labels (a text/plain POST needs no preflight) and undo them,
    and a DNS-rebinding page could read the state and the faces."""
    crop = call(server, '/api/state')['items'][0]['crop']
    body = json.dumps({'crops': [crop], 'label': 'happy'}).encode()
    port = server.server_port
    forged = {  # what a foreign page can send, and what it cannot know or set
        'text/plain from another site': dict(headers={'Content-Type': 'text/plain',
                                                      'Origin': 'http://evil.example',
                                                      'X-Fer-Label-Token': None}),
        'no token': dict(headers={'X-Fer-Label-Token': None}),
        'wrong token': dict(headers={'X-Fer-Label-Token': 'guess'}),
        'foreign Origin': dict(headers={'Origin': 'http://evil.example'}),
        'text/plain with the token': dict(headers={'Content-Type': 'text/plain'}),
        'rebound Host': dict(headers={'Host': f'evil.example:{port}'}),
        'another port': dict(headers={'Host': f'127.0.0.1:{port + 1}'})}
    for name, how in forged.items():
        for path in ('/api/label', '/api/undo'):
            code = request(server, 'POST', path, body, **how)[0]
            assert code in (403, 415), (name, path, code)
    assert not (dataset / 'labels.json').exists()
    rebound = {'Host': f'evil.example:{port}'}
    for path in ('/', '/api/state', f'/files/{crop}'):
        assert request(server, 'GET', path, headers=rebound)[0] == 403, path
    assert request(server, 'GET', '/api/state', headers={'X-Fer-Label-Token': None})[0] == 403
    for host in (f'localhost:{port}', f'[::1]:{port}', f'127.0.0.1:{port}'):
        assert request(server, 'GET', '/api/state', headers={'Host': host})[0] == 200, host
    page = request(server, 'GET', '/')[1].decode()
    assert f'content="{server.token}"' in page and len(server.token) >= 40


def test_a_named_host_is_answered_only_when_allowed(dataset):
    server = make_server(LabelStore(dataset), allow_hosts=('Robot.local',))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        named = {'Host': f'robot.local:{server.server_port}'}
        assert request(server, 'GET', '/api/state', headers=named)[0] == 200
        other = {'Host': f'laptop.local:{server.server_port}'}
        assert request(server, 'GET', '/api/state', headers=other)[0] == 403
    finally:
        server.shutdown()
        server.server_close()


def test_each_client_undoes_its_own_changes(server, dataset):
    """One undo history per server: one person's undo removed another's label."""
    crops = [i['crop'] for i in call(server, '/api/state')['items']]
    call(server, '/api/label', {'crops': [crops[0]], 'label': 'happy'}, client='alice')
    call(server, '/api/label', {'crops': [crops[1]], 'label': 'sad'}, client='bob')
    call(server, '/api/undo', {}, client='alice')
    assert saved(dataset) == {crops[1]: 'sad'}
    call(server, '/api/label', {'crops': [crops[2]], 'label': 'fear'}, client='alice')
    call(server, '/api/label', {'crops': [crops[2]], 'label': 'angry'}, client='bob')
    call(server, '/api/undo', {}, client='alice')  # bob changed it since: his label stays
    assert saved(dataset) == {crops[1]: 'sad', crops[2]: 'angry'}
    call(server, '/api/undo', {}, client='bob')
    assert saved(dataset) == {crops[1]: 'sad', crops[2]: 'fear'}
    assert status(server, '/api/undo', {}, **{'X-Fer-Label-Client': 'x' * 65}) == 400


def test_one_server_per_folder_and_orphans_of_a_killed_one_go(server, dataset, capsys):
    """Two servers on one folder lost labels: each rewrote labels.json from its memory."""
    from fer_ros.learning.label import FolderBusy, main
    with pytest.raises(FolderBusy, match='another fer_label serves this folder'):
        make_server(LabelStore(dataset))
    with pytest.raises(SystemExit) as exit_:
        main([str(dataset), '--port', '0'])
    assert exit_.value.code == 1 and 'another fer_label' in capsys.readouterr().err
    server.shutdown()
    server.server_close()
    (dataset / '.labels-abc123.tmp').write_text('{"half": ')  # as a kill -9 leaves it
    again = make_server(LabelStore(dataset))
    assert not list(dataset.glob('*.tmp'))
    again.server_close()


def test_malformed_request_framing_is_refused_at_once(server, capfd):
    start = time.monotonic()
    for length, code in (('abc', 411), ('-1', 411), ('', 411), (str(2 << 20), 413)):
        assert request(server, 'POST', '/api/undo', b'{}',
                       headers={'Content-Length': length})[0] == code, length
    assert time.monotonic() - start < 5  # -1 parked a thread for good
    assert 'Traceback' not in capfd.readouterr().err


def _hostile(dataset):
    """index.jsonl rows pointing out of the folder, carrying markup, needing URL encoding, and
    a line torn by a full disk."""
    outside = dataset.parent / 'secret.png'
    shutil.copy(dataset / next(iter(LabelStore(dataset).by_crop)), outside)
    (dataset / 'context' / 'link.jpg').symlink_to(outside)
    good = json.loads((dataset / 'index.jsonl').read_text().splitlines()[0])
    named = 'context/a #b%20?.jpg'
    shutil.copy(dataset / good['context'], dataset / named)
    rows = [{**good, 'crop': str(outside)}, {**good, 'context': '../secret.png'},
            {**good, 'context': 'context/link.jpg'},
            {**good, 'crop': 'crops/x.png', 'context': named,
             'prediction': '<img src=x onerror="document.title=1">'}]
    with (dataset / 'index.jsonl').open('a') as f:
        f.write(''.join(json.dumps(r) + '\n' for r in rows) + '{"crop": "crops/torn')
    (dataset / 'labels.json').write_text(json.dumps({good['crop']: '<b id=injected>x</b>'}))
    return good, named


def test_a_hostile_dataset_folder_serves_nothing_outside_and_shows_text(dataset):
    good, named = _hostile(dataset)
    store = LabelStore(dataset)
    lines = len((dataset / 'index.jsonl').read_text().splitlines())
    first = lines - 4  # the three rows out of the folder, a good one, the torn line
    assert [p.split(':')[0] for p in store.problems] == [
        f'index.jsonl line {n}' for n in (first, first + 1, first + 2, lines)]
    assert 'lies outside the dataset folder' in store.problems[0]
    assert 'not a complete JSON line' in store.problems[-1]
    assert len(store.rows) == 7 and store.rows[-1]['context'] == named
    server = make_server(store)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert request(server, 'GET', '/files/' + good['crop'])[0] == 200
        for path in ('/files/../secret.png', '/files/context/link.jpg',
                     '/files/' + str(dataset.parent / 'secret.png')):
            assert request(server, 'GET', path)[0] == 404, path
        assert request(server, 'GET', '/files/context/a%20%23b%2520%3F.jpg')[0] == 200
        from selenium.webdriver.support.ui import WebDriverWait
        driver = browser()
        try:
            driver.get(f'http://127.0.0.1:{server.server_port}')
            WebDriverWait(driver, 20).until(
                lambda d: d.execute_script('return document.body.dataset.ready'))
            texts = driver.execute_script(
                "return Array.from(document.querySelectorAll('.tile .text'), t => t.textContent)")
            assert '<img src=x onerror="document.title=1">? #0' in texts
            assert any(t.startswith('<b id=injected>x</b>') for t in texts)
            assert driver.execute_script(
                "return [document.title, document.querySelectorAll('#injected, img[src=x]')"
                '.length]') == ['fer_label', 0]
            WebDriverWait(driver, 10).until(lambda d: d.execute_script(
                "return Array.from(document.querySelectorAll('.tile img'), i => i.naturalWidth)")
                == [128] * 7)  # the crop whose name needs URL encoding is shown
        finally:
            driver.quit()
    finally:
        server.shutdown()
        server.server_close()
