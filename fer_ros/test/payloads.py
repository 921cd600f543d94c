"""Hand-built image payloads for the tests of hostile input."""
from __future__ import annotations

import struct
import zlib


def chunk(kind: bytes, data: bytes = b'') -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))


def png_of_zeros(width: int, height: int, depth: int = 8, colour: int = 2) -> bytes:
    """A valid PNG of zeros, compressed row by row (a 1000:1 'bomb' costs no memory to make);
    colour type 2 is RGB, 6 RGBA."""
    row = bytes(1 + width * {2: 3, 6: 4}[colour] * depth // 8)  # filter byte, then samples
    z = zlib.compressobj(9)
    idat = b''.join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack('>IIBBBBB', width, height, depth, colour, 0, 0, 0)
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', idat) + chunk(b'IEND')
