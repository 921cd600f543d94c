"""fer_label: label a fer_record dataset in a browser, served locally and offline.

The page (label_page.html, no external assets) shows the context crops grouped by track with
the model's guess; keys label one face or a whole track, reject a face, undo (each browser its
own changes). Every change is written to labels.json at once (a temporary file renamed over
it), so a crash loses nothing. labels.json maps each crop (its path in index.jsonl) to a class
name or "reject".

What a web page the labeller visits, or another process, cannot do: every request must name
this server in its Host header as an IP address or localhost with its port (a DNS name, what
DNS rebinding needs, is refused unless given with --allow-host); API requests carry the token
of this run, which only the page holds; changes are JSON POSTs from the page's own origin. One
server per folder (a lock), and only files index.jsonl lists inside the folder are served.
"""
from __future__ import annotations

import argparse
import collections
import fcntl
import ipaddress
import json
import os
import re
import secrets
import tempfile
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import unquote

from fer_ros.learning.recorded import LABELS, REJECT, read_index, read_labels

MAX_BODY = 1 << 20
MAX_CLIENTS, MAX_UNDO = 64, 10_000  # undo histories kept (the newest), steps each
LOCK, TEMP_PREFIX = '.fer_label.lock', '.labels-'
TOKEN_HEADER, CLIENT_HEADER = 'X-Fer-Label-Token', 'X-Fer-Label-Client'
_CLIENT_ID = re.compile(r'[A-Za-z0-9-]{1,64}')


class FolderBusy(RuntimeError):
    """Another fer_label serves the folder."""


class LabelStore:
    """The dataset's crops, their labels and each client's undo history; thread-safe."""

    def __init__(self, folder: Path, classes: tuple[str, ...] | None = None):
        self.folder = folder
        self.problems: list[str] = []  # index lines skipped, by file line
        self.rows = read_index(folder, self.problems)
        self.by_crop = {row['crop']: row for row in self.rows}
        self.classes = classes or (tuple(self.rows[0]['probabilities']) if self.rows else ())
        self.path = folder / LABELS
        self.labels = read_labels(folder)
        # client -> steps, each {crop: (label before, label set)}
        self._undo: collections.OrderedDict[str, list[dict]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def state(self) -> dict:
        with self._lock:
            items = [{'crop': r['crop'], 'context': r['context'], 'track': r['track'],
                      'frame': r['frame'], 'prediction': r['prediction'],
                      'label': self.labels.get(r['crop'])} for r in self.rows]
            return {'classes': list(self.classes), 'reject': REJECT, 'items': items,
                    'counts': self._counts()}

    def label(self, crops: list[str], label: str | None, client: str = '') -> dict:
        """Give crops a class, REJECT, or None (unlabelled); one undo step of `client`."""
        if label is not None and label not in (*self.classes, REJECT):
            raise ValueError(f'unknown label {label!r}')
        unknown = [c for c in crops if c not in self.by_crop]
        if unknown or not crops:
            raise ValueError(f'unknown crops {unknown[:3]}' if unknown else 'no crops given')
        with self._lock:
            steps = self._undo.setdefault(client, [])
            self._undo.move_to_end(client)
            while len(self._undo) > MAX_CLIENTS:
                self._undo.popitem(last=False)
            steps.append({c: (self.labels.get(c), label) for c in crops})
            del steps[:-MAX_UNDO]
            self._set({c: label for c in crops})
            return self._counts()

    def undo(self, client: str = '') -> dict:
        """Take back `client`'s last step, on the crops nobody has changed since."""
        with self._lock:
            if steps := self._undo.get(client):
                step = steps.pop()
                self._set({c: before for c, (before, after) in step.items()
                           if self.labels.get(c) == after})
            return self._counts()

    def _set(self, changes: dict[str, str | None]) -> None:
        for crop, label in changes.items():
            if label is None:
                self.labels.pop(crop, None)
            else:
                self.labels[crop] = label
        with tempfile.NamedTemporaryFile('w', dir=self.folder, prefix=TEMP_PREFIX,
                                         suffix='.tmp', delete=False) as f:
            json.dump(self.labels, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(f.name, self.path)

    def _counts(self) -> dict:
        counts = {name: 0 for name in (*self.classes, REJECT)}
        for label in self.labels.values():
            counts[label] = counts.get(label, 0) + 1
        return {'labelled': len(self.labels), 'total': len(self.rows), 'per_label': counts}


def hold_folder(folder: Path):
    """The folder's lock file, locked for this process (released when it ends, however it
    ends); FolderBusy while another holds it. Temporary files left by a killed server go."""
    handle = open(folder / LOCK, 'a+')
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise FolderBusy(f'{folder}: another fer_label serves this folder; stop it first, '
                         'or its labels and these would overwrite each other') from None
    for orphan in folder.glob(f'{TEMP_PREFIX}*.tmp'):
        orphan.unlink(missing_ok=True)
    return handle


def _host_allowed(host: str, port: int, names: frozenset[str]) -> bool:
    """Whether a Host header names this server: an IP address or localhost (or one of
    `names`) with its port."""
    name, _, given = host.rpartition(':')
    if given != str(port):
        return False
    name = name[1:-1] if name.startswith('[') and name.endswith(']') else name
    if name.lower() == 'localhost' or name.lower() in names:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class LabelServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, store: LabelStore, host: str, port: int, allow_hosts: frozenset[str]):
        self.lock_file = hold_folder(store.folder)
        try:
            super().__init__((host, port), _Handler)
        except OSError:
            self.lock_file.close()
            raise
        self.store, self.allow_hosts = store, allow_hosts
        self.token = secrets.token_urlsafe(32)
        self.page = resources.files('fer_ros.learning').joinpath('label_page.html') \
            .read_text().replace('{{token}}', self.token).encode()
        self.files = {r[key] for r in store.rows for key in ('crop', 'context')}

    def server_close(self) -> None:
        super().server_close()
        self.lock_file.close()


class _Handler(BaseHTTPRequestHandler):
    server: LabelServer
    timeout = 10  # seconds a client may take to send its request

    def log_message(self, *args) -> None:  # quiet: one line per image otherwise
        pass

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header('Content-Type', kind)
        self.send_header('Content-Length', str(len(body)))
        self.send_header('Cache-Control', 'no-store')
        self.send_header('X-Content-Type-Options', 'nosniff')
        self.send_header('Content-Security-Policy', "default-src 'self'; script-src "
                         "'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, value, status: int = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(value).encode(), 'application/json')

    def _refusal(self, api: bool) -> str | None:
        """Why this request may not be answered, or None."""
        host = self.headers.get('Host', '')
        if not _host_allowed(host, self.server.server_port, self.server.allow_hosts):
            return 'Host names no address of this server (see fer_label --allow-host)'
        if api and not secrets.compare_digest(self.headers.get(TOKEN_HEADER, ''),
                                              self.server.token):
            return 'missing or wrong token: use the page this server serves'
        origin = self.headers.get('Origin')
        if origin is not None and origin != f'http://{host}':
            return 'cross-origin request'
        return None

    def do_GET(self) -> None:
        path = self.path.split('?', 1)[0]
        if reason := self._refusal(path.startswith('/api/')):
            return self._json({'error': reason}, HTTPStatus.FORBIDDEN)
        name = unquote(path[7:]) if path.startswith('/files/') else None
        if path == '/':
            self._send(HTTPStatus.OK, self.server.page, 'text/html; charset=utf-8')
        elif path == '/api/state':
            self._json(self.server.store.state())
        elif name in self.server.files:  # only the dataset's images, inside its folder
            kind = 'image/png' if name.endswith('.png') else 'image/jpeg'
            try:
                self._send(HTTPStatus.OK, (self.server.store.folder / name).read_bytes(), kind)
            except OSError:
                self._json({'error': 'not found'}, HTTPStatus.NOT_FOUND)
        else:
            self._json({'error': 'not found'}, HTTPStatus.NOT_FOUND)

    def do_POST(self) -> None:
        if reason := self._refusal(True):
            return self._json({'error': reason}, HTTPStatus.FORBIDDEN)
        kind = self.headers.get('Content-Type', '').split(';', 1)[0].strip().lower()
        if kind != 'application/json':
            return self._json({'error': 'send JSON (Content-Type: application/json)'},
                              HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
        length = self.headers.get('Content-Length', '')
        if not length.isdigit():
            return self._json({'error': 'Content-Length must be a number of bytes'},
                              HTTPStatus.LENGTH_REQUIRED)
        if int(length) > MAX_BODY:
            return self._json({'error': 'request too large'},
                              HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        client = self.headers.get(CLIENT_HEADER, '')
        if not _CLIENT_ID.fullmatch(client):
            return self._json({'error': f'{CLIENT_HEADER}: 1 to 64 letters, digits or -'},
                              HTTPStatus.BAD_REQUEST)
        store = self.server.store
        try:
            body = json.loads(self.rfile.read(int(length)) or b'{}')
            if self.path == '/api/label':
                return self._json(store.label(list(body['crops']), body.get('label'), client))
            if self.path == '/api/undo':
                return self._json(store.undo(client))
        except (ValueError, KeyError, TypeError) as exc:
            return self._json({'error': str(exc)[:300]}, HTTPStatus.BAD_REQUEST)
        except OSError:  # a read cut short by the client's timeout
            return
        self._json({'error': 'not found'}, HTTPStatus.NOT_FOUND)


def make_server(store: LabelStore, host: str = '127.0.0.1', port: int = 0,
                allow_hosts: tuple[str, ...] = ()) -> LabelServer:
    """A server for `store` holding its folder (FolderBusy if another does)."""
    return LabelServer(store, host, port, frozenset(h.lower() for h in allow_hosts))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('dataset', type=Path, help='a fer_record folder (index.jsonl)')
    parser.add_argument('--port', type=int, default=8765)
    parser.add_argument('--host', default='127.0.0.1',
                        help='interface to serve on (default: this machine only)')
    parser.add_argument('--allow-host', action='append', default=[], metavar='NAME',
                        help='also answer requests addressed to this host name (e.g. the '
                             "machine's name on the LAN); IP addresses and localhost always")
    args = parser.parse_args(argv)
    try:
        store = LabelStore(args.dataset)
        server = make_server(store, args.host, args.port, tuple(args.allow_host))
    except (OSError, ValueError, FolderBusy) as exc:
        parser.exit(1, f'fer_label: {exc}\n')
    for problem in store.problems[:10]:
        print(f'skipped {problem}', flush=True)
    if len(store.problems) > 10:
        print(f'skipped {len(store.problems) - 10} more lines', flush=True)
    counts = store.state()['counts']
    print(f"labelling {counts['total']} faces ({counts['labelled']} labelled) at "
          f'http://{args.host}:{server.server_port}/ ; Ctrl-C to stop', flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == '__main__':
    main()
