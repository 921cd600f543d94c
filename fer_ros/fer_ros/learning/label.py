"""fer_label: label a fer_record dataset in a browser, served locally and offline.

The page (label_page.html, no external assets) shows the context crops grouped by track with
the model's guess; keys label one face or a whole track, reject a face, undo. Every change is
written to labels.json at once (a temporary file renamed over it), so a crash loses nothing.
labels.json maps each crop (its path in index.jsonl) to a class name or "reject".
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

from fer_ros.learning.recorded import LABELS, REJECT, read_index, read_labels

MAX_BODY = 1 << 20


class LabelStore:
    """The dataset's crops, their labels and the undo history; thread-safe."""

    def __init__(self, folder: Path, classes: tuple[str, ...] | None = None):
        self.folder = folder
        self.rows = read_index(folder)
        self.by_crop = {row['crop']: row for row in self.rows}
        self.classes = classes or (tuple(self.rows[0]['probabilities']) if self.rows else ())
        self.path = folder / LABELS
        self.labels = read_labels(folder)
        self._undo: list[dict[str, str | None]] = []
        self._lock = threading.Lock()

    def state(self) -> dict:
        with self._lock:
            items = [{'crop': r['crop'], 'context': r['context'], 'track': r['track'],
                      'frame': r['frame'], 'prediction': r['prediction'],
                      'label': self.labels.get(r['crop'])} for r in self.rows]
            return {'classes': list(self.classes), 'reject': REJECT, 'items': items,
                    'counts': self._counts()}

    def label(self, crops: list[str], label: str | None) -> dict:
        """Give crops a class, REJECT, or None (unlabelled); one undo step."""
        if label is not None and label not in (*self.classes, REJECT):
            raise ValueError(f'unknown label {label!r}')
        unknown = [c for c in crops if c not in self.by_crop]
        if unknown or not crops:
            raise ValueError(f'unknown crops {unknown[:3]}' if unknown else 'no crops given')
        with self._lock:
            self._undo.append({c: self.labels.get(c) for c in crops})
            self._set({c: label for c in crops})
            return self._counts()

    def undo(self) -> dict:
        with self._lock:
            if self._undo:
                self._set(self._undo.pop())
            return self._counts()

    def _set(self, changes: dict[str, str | None]) -> None:
        for crop, label in changes.items():
            if label is None:
                self.labels.pop(crop, None)
            else:
                self.labels[crop] = label
        with tempfile.NamedTemporaryFile('w', dir=self.folder, suffix='.tmp',
                                         delete=False) as f:
            json.dump(self.labels, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(f.name, self.path)

    def _counts(self) -> dict:
        counts = {name: 0 for name in (*self.classes, REJECT)}
        for label in self.labels.values():
            counts[label] = counts.get(label, 0) + 1
        return {'labelled': len(self.labels), 'total': len(self.rows), 'per_label': counts}


def make_server(store: LabelStore, host: str = '127.0.0.1', port: int = 0) -> ThreadingHTTPServer:
    page = resources.files('fer_ros.learning').joinpath('label_page.html').read_bytes()
    files = {r[key] for r in store.rows for key in ('crop', 'context')}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet: one line per image otherwise
            pass

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header('Content-Type', kind)
            self.send_header('Content-Length', str(len(body)))
            self.send_header('Cache-Control', 'no-store')
            self.end_headers()
            self.wfile.write(body)

        def _json(self, value, status: int = HTTPStatus.OK) -> None:
            self._send(status, json.dumps(value).encode(), 'application/json')

        def do_GET(self) -> None:
            path = self.path.split('?', 1)[0]
            if path == '/':
                self._send(HTTPStatus.OK, page, 'text/html; charset=utf-8')
            elif path == '/api/state':
                self._json(store.state())
            elif path.startswith('/files/') and path[7:] in files:  # only the dataset's images
                kind = 'image/png' if path.endswith('.png') else 'image/jpeg'
                self._send(HTTPStatus.OK, (store.folder / path[7:]).read_bytes(), kind)
            else:
                self._json({'error': 'not found'}, HTTPStatus.NOT_FOUND)

        def do_POST(self) -> None:
            length = int(self.headers.get('Content-Length') or 0)
            if length > MAX_BODY:
                return self._json({'error': 'request too large'},
                                  HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            try:
                body = json.loads(self.rfile.read(length) or b'{}')
                if self.path == '/api/label':
                    return self._json(store.label(list(body['crops']), body.get('label')))
                if self.path == '/api/undo':
                    return self._json(store.undo())
            except (ValueError, KeyError, TypeError) as exc:
                return self._json({'error': str(exc)}, HTTPStatus.BAD_REQUEST)
            self._json({'error': 'not found'}, HTTPStatus.NOT_FOUND)

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('dataset', type=Path, help='a fer_record folder (index.jsonl)')
    parser.add_argument('--port', type=int, default=8765)
    parser.add_argument('--host', default='127.0.0.1',
                        help='interface to serve on (default: this machine only)')
    args = parser.parse_args(argv)
    try:
        store = LabelStore(args.dataset)
    except (OSError, ValueError) as exc:
        parser.exit(1, f'fer_label: {exc}\n')
    server = make_server(store, args.host, args.port)
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
