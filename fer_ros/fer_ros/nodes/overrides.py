"""Command-line overrides shared by launch/fer.launch.py and the fer_bringup command."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class Override:
    name: str                     # launch argument / --option name
    node: str                     # node whose parameter it sets
    parse: Callable[[str], Any]   # string -> parameter value
    help: str


def flag(text: str) -> bool:
    if text.lower() in ('true', '1'):
        return True
    if text.lower() in ('false', '0'):
        return False
    raise ValueError(text)


OVERRIDES = (
    Override('source', 'camera_node', str,
             'camera source: V4L2 index or /dev/videoN, video, image, folder, glob, '
             'builtin:astronaut'),
    Override('model', 'fer_node', str,
             "expression model: registry name, checkpoint path or ensemble 'a+b'"),
    Override('device', 'fer_node', str, 'compute device: auto, cpu, cuda or cuda:N'),
    Override('rate', 'fer_node', float, 'maximum FER processing rate in Hz (0 = every frame)'),
    Override('hri', 'fer_node', flag, 'also publish REP-155 /humans/faces/... and their TF '
             'frames (needs hri_msgs)'),
    Override('landmarks', 'fer_node', flag, 'face mesh, eyes, blinks, head pose (and with hri, '
             'landmarks and TF frames)'),
)


def node_overrides(values: Mapping[str, str | None]) -> dict[str, dict[str, Any]]:
    """{'rate': '5'} -> {'fer_node': {'rate': 5.0}}; empty or missing values keep the YAML."""
    out: dict[str, dict[str, Any]] = {}
    for o in OVERRIDES:
        raw = values.get(o.name)
        if raw is None or str(raw).strip() == '':
            continue
        try:
            value = o.parse(str(raw).strip())
        except ValueError:
            raise ValueError(f"{o.name}: cannot read {raw!r} as {o.parse.__name__}") from None
        out.setdefault(o.node, {})[o.name] = value
    return out
