"""A minimal streaming GeoTIFF writer: uncompressed, pixel-interleaved strips, classic TIFF.

The whole layout (header, IFD, tag values, strip offsets) is computed up front, so the exact file size is
known before the first byte is sent and strips are generated on the fly with flat memory.

Pixel values are a cheap deterministic pattern that depends on ``(x + y) mod 256``, the band and a seed
(see ``pixel_value``): one precomputed buffer of ``width + 256`` pixels per file is enough, every row is a
slice of it, so streaming runs at memcpy speed.
"""

from __future__ import annotations

import math
import struct
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

import numpy as np

PERIOD = 256
STRIP_TARGET_BYTES = 1 << 20
MAX_CLASSIC_TIFF = (1 << 32) - 1

# TIFF tag ids
_T_WIDTH, _T_LENGTH, _T_BPS, _T_COMPRESSION, _T_PHOTOMETRIC = 256, 257, 258, 259, 262
_T_DESCRIPTION, _T_STRIP_OFFSETS, _T_SPP, _T_ROWS, _T_STRIP_COUNTS = 270, 273, 277, 278, 279
_T_PLANAR, _T_SOFTWARE, _T_EXTRA, _T_SAMPLE_FORMAT = 284, 305, 338, 339
_T_PIXEL_SCALE, _T_TIEPOINT, _T_GEOKEYS, _T_GDAL_META, _T_GDAL_NODATA = 33550, 33922, 34735, 42112, 42113
_SHORT, _LONG, _ASCII, _DOUBLE = 3, 4, 2, 12
_TYPE_SIZE = {_SHORT: 2, _LONG: 4, _ASCII: 1, _DOUBLE: 8}


@dataclass
class RasterSpec:
    """Everything needed to lay out one GeoTIFF."""

    width: int
    height: int
    band_names: list[str]
    dtype: str  # "int16" or "uint8"
    epsg: int
    origin_x: float  # top-left corner
    origin_y: float
    res_x: float
    res_y: float
    seed: int = 0
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def nodata(self) -> int:
        return -32768 if self.dtype == "int16" else 0

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self.dtype == "int16" else 1

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return (
            self.origin_x,
            self.origin_y - self.height * self.res_y,
            self.origin_x + self.width * self.res_x,
            self.origin_y,
        )


def pixel_value(x: int, y: int, band: int, seed: int, dtype: str) -> int:
    """The value of pixel (column x, row y) of band index ``band`` (0-based). Never equals nodata."""
    s = (x + y) % PERIOD
    if dtype == "uint8":
        return 1 + (s + 37 * band + seed) % 254
    return 100 + (s * 7 + 401 * band + seed) % 9000


def _row_buffer(spec: RasterSpec) -> bytes:
    s = np.arange(spec.width + PERIOD, dtype=np.int64) % PERIOD
    bands = np.arange(len(spec.band_names), dtype=np.int64)
    if spec.dtype == "uint8":
        vals = 1 + (s[:, None] + 37 * bands[None, :] + spec.seed) % 254
        return vals.astype("<u1").tobytes()
    vals = 100 + (s[:, None] * 7 + 401 * bands[None, :] + spec.seed) % 9000
    return vals.astype("<i2").tobytes()


def _geokeys(epsg: int) -> list[int]:
    from .geo import is_geographic_epsg

    if is_geographic_epsg(epsg):
        keys = [(1024, 0, 1, 2), (1025, 0, 1, 1), (2048, 0, 1, epsg), (2054, 0, 1, 9102)]
    else:
        keys = [(1024, 0, 1, 1), (1025, 0, 1, 1), (3072, 0, 1, epsg), (3076, 0, 1, 9001)]
    out = [1, 1, 0, len(keys)]
    for k in keys:
        out.extend(k)
    return out


def _gdal_metadata(spec: RasterSpec) -> str:
    items = [f'<Item name="{escape(k)}">{escape(v)}</Item>' for k, v in spec.metadata.items()]
    items += [
        f'<Item name="DESCRIPTION" sample="{i}" role="description">{escape(b)}</Item>'
        for i, b in enumerate(spec.band_names)
    ]
    return "<GDALMetadata>" + "".join(items) + "</GDALMetadata>"


class GeoTiffStream:
    """Layout of one GeoTIFF and generators of its bytes."""

    def __init__(self, spec: RasterSpec) -> None:
        if spec.width <= 0 or spec.height <= 0:
            raise ValueError("empty raster")
        self.spec = spec
        nb = len(spec.band_names)
        self.row_bytes = spec.width * nb * spec.bytes_per_sample
        self.rows_per_strip = max(1, min(spec.height, STRIP_TARGET_BYTES // self.row_bytes))
        self.n_strips = math.ceil(spec.height / self.rows_per_strip)
        self.data_bytes = self.row_bytes * spec.height
        self.header = self._build_header()
        self.size = len(self.header) + self.data_bytes
        if self.size > MAX_CLASSIC_TIFF:
            raise ValueError("raster too large for a classic TIFF (4 GiB)")

    def _build_header(self) -> bytes:
        spec = self.spec
        nb = len(spec.band_names)
        bps = 8 * spec.bytes_per_sample
        strip_counts = [self.rows_per_strip * self.row_bytes] * self.n_strips
        last_rows = spec.height - self.rows_per_strip * (self.n_strips - 1)
        strip_counts[-1] = last_rows * self.row_bytes
        entries: list[tuple[int, int, list[int] | list[float] | bytes]] = [
            (_T_WIDTH, _LONG, [spec.width]),
            (_T_LENGTH, _LONG, [spec.height]),
            (_T_BPS, _SHORT, [bps] * nb),
            (_T_COMPRESSION, _SHORT, [1]),
            (_T_PHOTOMETRIC, _SHORT, [1]),
            (_T_DESCRIPTION, _ASCII, b"ClearSKY emulator composite\x00"),
            (_T_STRIP_OFFSETS, _LONG, [0] * self.n_strips),  # patched below
            (_T_SPP, _SHORT, [nb]),
            (_T_ROWS, _LONG, [self.rows_per_strip]),
            (_T_STRIP_COUNTS, _LONG, strip_counts),
            (_T_PLANAR, _SHORT, [1]),
            (_T_SOFTWARE, _ASCII, b"clearsky-emulator\x00"),
            (_T_SAMPLE_FORMAT, _SHORT, [2 if spec.dtype == "int16" else 1] * nb),
            (_T_PIXEL_SCALE, _DOUBLE, [spec.res_x, spec.res_y, 0.0]),
            (_T_TIEPOINT, _DOUBLE, [0.0, 0.0, 0.0, spec.origin_x, spec.origin_y, 0.0]),
            (_T_GEOKEYS, _SHORT, _geokeys(spec.epsg)),
            (_T_GDAL_META, _ASCII, _gdal_metadata(spec).encode() + b"\x00"),
            (_T_GDAL_NODATA, _ASCII, str(spec.nodata).encode() + b"\x00"),
        ]
        if nb > 1:
            entries.append((_T_EXTRA, _SHORT, [0] * (nb - 1)))
        entries.sort(key=lambda e: e[0])
        ifd_offset = 8
        ifd_size = 2 + 12 * len(entries) + 4
        extra_offset = ifd_offset + ifd_size

        def count_of(typ: int, value: list[int] | list[float] | bytes) -> int:
            return len(value)

        # First pass: sizes of out-of-line values.
        payload_sizes = []
        for _tag, typ, value in entries:
            size = _TYPE_SIZE[typ] * count_of(typ, value)
            payload_sizes.append(size if size > 4 else 0)
        total_extra = sum(s + (s & 1) for s in payload_sizes)
        data_offset = extra_offset + total_extra
        data_offset += (-data_offset) % 16
        offsets = [data_offset + i * self.rows_per_strip * self.row_bytes for i in range(self.n_strips)]
        entries = [(t, ty, offsets if t == _T_STRIP_OFFSETS else v) for t, ty, v in entries]

        ifd = bytearray(struct.pack("<H", len(entries)))
        extra = bytearray()
        for tag, typ, value in entries:
            count = count_of(typ, value)
            if typ == _ASCII:
                assert isinstance(value, bytes)
                raw = value
            elif typ == _SHORT:
                raw = struct.pack(f"<{count}H", *value)
            elif typ == _LONG:
                raw = struct.pack(f"<{count}I", *value)
            else:
                raw = struct.pack(f"<{count}d", *value)
            if len(raw) <= 4:
                ifd += struct.pack("<HHI", tag, typ, count) + raw.ljust(4, b"\x00")
            else:
                ifd += struct.pack("<HHII", tag, typ, count, extra_offset + len(extra))
                extra += raw
                if len(extra) & 1:
                    extra += b"\x00"
        ifd += struct.pack("<I", 0)
        header = b"II*\x00" + struct.pack("<I", ifd_offset) + bytes(ifd) + bytes(extra)
        assert len(header) <= data_offset
        return header.ljust(data_offset, b"\x00")

    def iter_strips(self) -> Iterator[bytes]:
        """The file as a sequence of chunks: the header, then one chunk per strip."""
        yield self.header
        buf = memoryview(_row_buffer(self.spec))
        pixel = len(self.spec.band_names) * self.spec.bytes_per_sample
        row = self.row_bytes
        for strip in range(self.n_strips):
            y0 = strip * self.rows_per_strip
            y1 = min(self.spec.height, y0 + self.rows_per_strip)
            yield b"".join(buf[((y % PERIOD) * pixel) : ((y % PERIOD) * pixel + row)] for y in range(y0, y1))

    async def aiter_strips(self) -> AsyncIterator[bytes]:
        for chunk in self.iter_strips():
            yield chunk

    def to_bytes(self) -> bytes:
        return b"".join(self.iter_strips())
