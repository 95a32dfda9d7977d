"""Unit tests of the download machinery that need no server: names, sidecar rules, STAC, progress, hashing,
the atomic writer, and the operators' templating contract."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

import pytest

from airflow_provider_clearsky.operators import _atomic_writer as writing
from airflow_provider_clearsky.operators import _download_metadata as meta
from airflow_provider_clearsky.operators import _download_transfer as transfer
from airflow_provider_clearsky.operators import _storage as storage
from airflow_provider_clearsky.operators.download import (
    ClearSkyDownloadCompositeOperator,
    ClearSkyDownloadTileOperator,
)
from airflow_provider_clearsky.utils.area import geojson_area_km2

SETTINGS = {"Wkt": "POLYGON ((0 0, 1 0, 1 1, 0 1, 0 0))", "Date": "2025-05-07", "Model": "Stratus2",
            "Resolution": 10, "EpsgProjection": 47000, "Bandnames": "rgb", "FileType": "tif"}  # fmt: skip


def test_request_key_is_canonical_and_sensitive_to_every_setting() -> None:
    key = meta.request_key(SETTINGS)
    assert key == meta.request_key(dict(reversed(list(SETTINGS.items()))))
    assert key != meta.request_key({**SETTINGS, "Bandnames": "all"})
    assert key != meta.request_key({**SETTINGS, "Wkt": "POLYGON ((0 0, 2 0, 2 2, 0 2, 0 0))"})


def test_default_filename_is_deterministic_and_safe() -> None:
    key = meta.request_key(SETTINGS)
    name = meta.default_filename("composite", SETTINGS, key)
    assert name == f"clearsky_composite_2025-05-07_Stratus2_10m_epsg47000_{key[:12]}.tif"
    assert meta.default_filename("tile", {**SETTINGS, "Model": "a/b c"}, key, guid="g").startswith(
        "clearsky_tile_g_2025-05-07_a-b-c_"
    )


def test_sidecar_matches_needs_same_key_size_and_checksum() -> None:
    assert meta.sidecar_matches(None, "k") == (False, "it has no readable sidecar")
    assert meta.sidecar_matches({"request_key": "other", "size": 1, "sha256": "x"}, "k")[0] is False
    assert meta.sidecar_matches({"request_key": "k", "size": None, "sha256": "x"}, "k")[0] is False
    assert meta.sidecar_matches({"request_key": "k", "size": 1, "sha256": "x"}, "k") == (True, "")


def test_notices_pass_attribution_like_fields_through_unchanged() -> None:
    found = meta.notices("header", {"X-Attribution": "© ESA", "Content-Length": "1", "x-licence": ["a", 1]})
    assert found == {"header:X-Attribution": "© ESA", "header:x-licence": ["a", 1]}
    assert meta.notices("order", None) == {}


def test_area_on_the_authalic_sphere() -> None:
    # 1° x 1° at the equator is about 12,364 km²; a hole is subtracted.
    square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    assert geojson_area_km2(square) == pytest.approx(12_364, rel=0.005)
    holed = {"type": "Polygon", "coordinates": [*square["coordinates"], [[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75], [0.25, 0.25]]]}  # fmt: skip
    assert geojson_area_km2(holed) == pytest.approx(12_364 * 0.75, rel=0.005)
    multi = {"type": "MultiPolygon", "coordinates": [square["coordinates"], square["coordinates"]]}
    assert geojson_area_km2(multi) == pytest.approx(2 * 12_364, rel=0.005)


def test_stac_item_is_minimal_valid_stac_1_0() -> None:
    geometry = {"type": "Polygon", "coordinates": [[[8, 50], [9, 50], [9, 51], [8, 51], [8, 50]]]}
    sidecar = {"request": SETTINGS, "size": 3, "sha256": "ab" * 32, "downloaded_at": "2025-06-10T12:00:00Z"}
    item = meta.stac_item(item_id="x", filename="x.tif", date="2025-05-07", geometry=geometry, sidecar=sidecar)
    for field in ("type", "stac_version", "id", "geometry", "bbox", "properties", "links", "assets"):
        assert field in item
    assert item["bbox"] == [8, 50, 9, 51]
    assert item["properties"]["datetime"] == "2025-05-07T00:00:00Z"
    assert item["assets"]["data"]["file:checksum"] == "1220" + "ab" * 32
    assert meta.STAC_FILE_EXTENSION in item["stac_extensions"]
    json.dumps(item)


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, event: str, *args: object) -> None:
        self.lines.append(event % args)


def test_progress_logs_every_ten_percent_and_every_interval() -> None:
    now = [0.0]
    log = _Log()
    progress = transfer.Progress(log, "f.tif", 1000, clock=lambda: now[0])
    for received in range(50, 1001, 50):
        progress.update(received)
    assert [line.split("(")[-1] for line in log.lines] == [f"{p}%)" for p in range(10, 100, 10)]
    log.lines.clear()
    unknown = transfer.Progress(log, "g.tif", None, clock=lambda: now[0], interval=10)
    unknown.update(10)
    now[0] = 10.5
    unknown.update(20)
    unknown.finish()
    assert log.lines[0] == "g.tif: 20 B received"
    assert log.lines[1].startswith("g.tif: done, 20 B (20 bytes) in 10.50 s")


def test_connection_slots_are_shared_per_connection() -> None:
    first = transfer.connection_slots("unit_conn", "http://127.0.0.1:1", 2)
    assert transfer.connection_slots("unit_conn", "http://127.0.0.1:1", 5) is first
    assert transfer.connection_slots("other_conn", "http://127.0.0.1:1", 2) is not first
    assert first.acquire(blocking=False) and first.acquire(blocking=False)
    assert not first.acquire(blocking=False)  # a third concurrent download waits
    first.release()
    first.release()


@pytest.mark.parametrize("chunks", [[b"abc"], [os.urandom(300_000) for _ in range(20)], []])
def test_background_sha256_equals_hashlib(chunks: list[bytes]) -> None:
    digest = writing.BackgroundSha256()
    for chunk in chunks:
        digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(b"".join(chunks)).hexdigest()


class Reads:
    """A ``readinto`` that fills each buffer with fresh bytes (``sizes`` bytes per read), recording the buffers."""

    def __init__(self, sizes: list[int]) -> None:
        self.sizes = sizes
        self.sent = bytearray()
        self.buffers: set[int] = set()

    def __call__(self, buffer: memoryview) -> int:
        if not self.sizes:
            return 0
        chunk = os.urandom(min(self.sizes.pop(0), len(buffer)))
        buffer[: len(chunk)] = chunk
        self.sent += chunk
        self.buffers.add(id(buffer.obj))
        return len(chunk)


SHA256 = hashlib.sha256


class SlowSha256:
    """hashlib's SHA-256, slowed down: a buffer reused before its bytes were hashed changes the digest."""

    def __init__(self) -> None:
        self._digest = SHA256()

    def update(self, data: bytes | memoryview) -> None:
        time.sleep(0.02)  # longer than filling a buffer
        self._digest.update(data)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def test_atomic_writer_reuses_a_few_buffers_and_hashes_each_before_reuse(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(writing.hashlib, "sha256", SlowSha256)
    monkeypatch.setattr(writing, "HASH_DEPTH", 1)  # a tight ring: a buffer given back early is refilled at once
    reads = Reads([writing.HASH_BLOCK] * 40 + [12_345, 1, writing.HASH_BLOCK])
    progress: list[int] = []
    final = storage.storage_path(str(tmp_path / "f.bin"))
    with writing.AtomicWriter(final) as writer:
        writer.write_from(reads, progress.append)
        writer.finish(len(reads.sent))
        writer.commit()
    assert (tmp_path / "f.bin").read_bytes() == reads.sent
    assert writer.sha256 == SHA256(reads.sent).hexdigest()
    assert progress[-1] == writer.size == len(reads.sent) and len(progress) == 43  # one report per read
    assert len(reads.buffers) <= writing.HASH_DEPTH + 2  # memory stays flat whatever the file size


def test_atomic_writer_takes_small_reads_one_buffer_each(tmp_path: Path) -> None:
    """A TLS socket gives one 16 KiB record per read: each is written and hashed, and the ring stays small."""
    reads = Reads([16 * 1024] * 200)
    progress: list[int] = []
    with writing.AtomicWriter(storage.storage_path(str(tmp_path / "f.bin"))) as writer:
        writer.write_from(reads, progress.append)
        writer.finish(len(reads.sent))
    assert progress == [16 * 1024 * n for n in range(1, 201)]
    assert writer.sha256 == SHA256(reads.sent).hexdigest() and len(reads.buffers) <= writing.HASH_DEPTH + 2


def test_atomic_writer_failing_mid_stream_stops_hashing_and_leaves_nothing(tmp_path: Path) -> None:
    final = storage.storage_path(str(tmp_path / "f.bin"))

    def reads(buffer: memoryview) -> int:
        if writer.size >= 5 * writing.HASH_BLOCK:
            raise OSError(28, "No space left on device")
        buffer[:] = b"x" * len(buffer)
        return len(buffer)

    with pytest.raises(OSError, match="No space left"), writing.AtomicWriter(final) as writer:
        writer.write_from(reads, lambda _: None)
    assert list(tmp_path.iterdir()) == []
    assert not any(thread.name == "clearsky-sha256" for thread in threading.enumerate())


def test_atomic_writer_commits_only_complete_files(tmp_path: Path) -> None:
    final = storage.storage_path(str(tmp_path / "sub" / "f.bin"))
    with writing.AtomicWriter(final) as writer:
        writer.write(b"12345")
        with pytest.raises(writing.IncompleteDownloadError, match="received 5 bytes but Content-Length announced 6"):
            writer.finish(6)
    assert list((tmp_path / "sub").iterdir()) == []

    def fail_midway() -> None:
        with writing.AtomicWriter(final) as writer:
            writer.write(b"12")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_midway()
    assert list((tmp_path / "sub").iterdir()) == []

    with writing.AtomicWriter(final) as writer:
        writer.write(b"123")
        writer.finish(3)
        assert not (tmp_path / "sub" / "f.bin").exists()  # not before commit
        writer.commit()
    assert (tmp_path / "sub" / "f.bin").read_bytes() == b"123"
    assert writer.sha256 == hashlib.sha256(b"123").hexdigest()
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["f.bin"]
    assert storage.uri_of(final) == f"file://{tmp_path}/sub/f.bin"


def test_atomic_writer_on_memory_store() -> None:
    import fsspec

    final = storage.storage_path("memory://unit-tests/a/f.bin")
    with writing.AtomicWriter(final) as writer:
        writer.write(b"xyz")
        writer.finish(3)
        writer.commit()
    fs = fsspec.filesystem("memory")
    assert fs.cat_file("/unit-tests/a/f.bin") == b"xyz"
    assert fs.ls("/unit-tests/a", detail=False) == ["/unit-tests/a/f.bin"]


def test_templating_contract() -> None:
    composite = ClearSkyDownloadCompositeOperator(task_id="c", wkt="x.wkt", date="{{ ds }}", destination="/d")
    for name in ("wkt", "geojson", "date", "destination", "filename", "bands", "upload_url", "max_processing_units"):
        assert name in composite.template_fields
    assert ".wkt" in composite.template_ext and ".geojson" in composite.template_ext
    assert composite.wkt == "x.wkt" and composite.date == "{{ ds }}"  # untouched until rendered
    tile = ClearSkyDownloadTileOperator(task_id="t", tile_guid="{{ params.g }}", date="2025-05-07", destination="/d")
    assert "tile_guid" in tile.template_fields and "minitile_guid" in tile.template_fields


def test_vendor_download_settings_are_sent_with_the_vendor_defaults_unless_set() -> None:
    """UtmGridForcePixelResolutionSize and OldPixelSelectionMode go out explicitly (the 2025 client's defaults);
    the tile operator's ClipReflectance only when set; the operators never ask for automatic order creation."""
    area = "POLYGON ((10 55, 10.1 55, 10.1 55.1, 10 55.1, 10 55))"
    default = ClearSkyDownloadCompositeOperator(task_id="c", wkt=area, date="2025-05-07", destination="/d")
    payload = default._targets()[0].request.to_payload()
    assert payload["UtmGridForcePixelResolutionSize"] is True and payload["OldPixelSelectionMode"] is False
    assert payload["AutomaticOrderCreation"] is False

    chosen = ClearSkyDownloadCompositeOperator(
        task_id="c2",
        wkt=area,
        date="2025-05-07",
        destination="/d",
        force_pixel_resolution=False,
        old_pixel_selection=True,
    )
    payload = chosen._targets()[0].request.to_payload()
    assert payload["UtmGridForcePixelResolutionSize"] is False and payload["OldPixelSelectionMode"] is True

    guid = "0b7e6a38-1f4e-4a47-9d2a-5c1f2b3a4d5e"
    tile = ClearSkyDownloadTileOperator(task_id="t", tile_guid=guid, date="2025-05-07", destination="/d")
    assert "ClipReflectance" not in tile._targets()[0].request.to_payload()
    clipped = ClearSkyDownloadTileOperator(
        task_id="t2", tile_guid=guid, date="2025-05-07", destination="/d", clip_reflectance=True
    )
    payload = clipped._targets()[0].request.to_payload()
    assert payload["ClipReflectance"] is True and "OldPixelSelectionMode" not in payload
