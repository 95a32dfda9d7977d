"""Downloads to S3 through an Airflow ``aws`` connection in the URL (``s3://aws_default@bucket/...``), against a
real S3-compatible server on 127.0.0.1 (moto's server, a free port): committed by a multipart upload to the
final key, completed only when every byte is in, aborted otherwise; open uploads of killed writers are
aborted by a later run (issue 12 "object stores done right", issue 17 D1/D9)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_clearsky._compat import AirflowFailException
from airflow_provider_clearsky.emulator.handle import EmulatorHandle
from airflow_provider_clearsky.exceptions import RetryableTaskError
from airflow_provider_clearsky.operators import _storage
from tests.integration.operators.test_download import COMPOSITE, composite, place_order, set_connection, settled_log

pytestmark = pytest.mark.integration

boto3 = pytest.importorskip("boto3")
pytest.importorskip("s3fs")
pytest.importorskip("airflow.providers.amazon")
moto_server = pytest.importorskip("moto.server")

BUCKET = "imagery"
NAME = "field.tif"
KEY = f"runs/{NAME}"
DESTINATION = f"s3://aws_default@{BUCKET}/runs"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh bucket, and ``aws_default`` pointing at the server (the store cache is cleared per test)."""
    from airflow.sdk.io import store

    connection = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(connection))
    monkeypatch.setattr(store, "_STORE_CACHE", {})
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    for bucket in client.list_buckets().get("Buckets", []):
        for item in client.list_objects_v2(Bucket=bucket["Name"]).get("Contents", []):
            client.delete_object(Bucket=bucket["Name"], Key=item["Key"])
        for upload in client.list_multipart_uploads(Bucket=bucket["Name"]).get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket["Name"], Key=upload["Key"], UploadId=upload["UploadId"])
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def emu(clearsky_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> EmulatorHandle:
    set_connection(monkeypatch, clearsky_emulator)
    place_order(clearsky_emulator)
    settled_log(clearsky_emulator)
    return clearsky_emulator


def keys(s3: Any) -> list[str]:
    return sorted(item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def open_uploads(s3: Any) -> list[str]:
    return [upload["Key"] for upload in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])]


def charges(emu: EmulatorHandle) -> int:
    settled_log(emu)
    return len(emu.control.charges("download"))


def download(**kwargs: Any) -> str:
    return str(composite(destination=DESTINATION, filename=NAME, **kwargs).execute({}))


def test_a_download_to_s3_is_one_complete_object_with_its_metadata(emu: EmulatorHandle, s3: Any) -> None:
    uri = download()

    assert uri == f"s3://aws_default@{BUCKET}/{KEY}" or uri.endswith(f"{BUCKET}/{KEY}")
    assert keys(s3) == [KEY, f"{KEY}.json", f"{KEY}.stac.json"]  # no temporary object, no copy left behind
    assert open_uploads(s3) == []
    data = s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()
    sidecar = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{KEY}.json")["Body"].read())
    assert sidecar["size"] == len(data) and sidecar["sha256"] == hashlib.sha256(data).hexdigest()
    assert charges(emu) == 1

    assert download() == uri  # complete (size and checksum): nothing is paid again
    assert charges(emu) == 1


def test_nothing_is_at_the_final_key_until_every_byte_is_in(emu: EmulatorHandle, s3: Any) -> None:
    emu.control.add_fault("trickle", path=COMPOSITE, method="POST", delay=0.05, chunk=65536)
    snapshots: list[tuple[list[str], list[str]]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            present = keys(s3)  # first the objects, then the uploads still open after that
            snapshots.append((present, open_uploads(s3)))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        download()
    finally:
        done.set()
        watcher.join()
    # The bytes went into a multipart upload of the final key itself (started before paying)...
    assert any(KEY in uploads and KEY not in present for present, uploads in snapshots)
    # ...and the object appeared only whole, once the upload was completed, after its sidecar.
    for present, uploads in snapshots:
        if KEY in present:
            assert KEY not in uploads and f"{KEY}.json" in present
    assert open_uploads(s3) == []


def test_a_cut_download_leaves_no_object_and_no_open_upload(emu: EmulatorHandle, s3: Any) -> None:
    emu.control.add_fault("truncate", path=COMPOSITE, method="POST")
    with pytest.raises(RetryableTaskError, match=r"cut short|reset|closed|incomplete|protocol"):
        download()
    assert keys(s3) == [] and open_uploads(s3) == []

    download()  # the retry
    assert keys(s3) == [KEY, f"{KEY}.json", f"{KEY}.stac.json"] and open_uploads(s3) == []


def test_a_later_run_aborts_the_open_upload_of_a_killed_writer(emu: EmulatorHandle, s3: Any) -> None:
    killed = s3.create_multipart_upload(Bucket=BUCKET, Key=KEY)["UploadId"]
    s3.upload_part(Bucket=BUCKET, Key=KEY, UploadId=killed, PartNumber=1, Body=b"half of a paid file")
    other = s3.create_multipart_upload(Bucket=BUCKET, Key="runs/other.tif")["UploadId"]

    download(execution_timeout=dt.timedelta(milliseconds=1))  # any upload older than this is a dead writer's

    assert open_uploads(s3) == ["runs/other.tif"]  # another file's upload is left alone
    s3.abort_multipart_upload(Bucket=BUCKET, Key="runs/other.tif", UploadId=other)


class _UploadsStub:
    """Just the S3 calls the cleaner makes. moto reports every upload as initiated on 2010-11-10, so the age
    rule (a live writer's young upload is left alone) is checked here, against controlled times."""

    def __init__(self, uploads: list[dict[str, Any]]) -> None:
        self.uploads = uploads
        self.aborted: list[str] = []

    def split_path(self, path: str) -> tuple[str, str, None]:
        bucket, _, key = path.partition("/")
        return bucket, key, None

    def call_s3(self, method: str, **kwargs: Any) -> dict[str, Any]:
        if method == "list_multipart_uploads":
            return {"Uploads": [u for u in self.uploads if u["Key"].startswith(kwargs["Prefix"])]}
        assert method == "abort_multipart_upload"
        self.aborted.append(kwargs["UploadId"])
        return {}


def test_only_uploads_older_than_the_threshold_are_aborted() -> None:
    from airflow_provider_clearsky.operators import _storage as storage
    from airflow_provider_clearsky.operators import _storage_leftovers as leftovers

    now = dt.datetime(2026, 7, 1, 12, tzinfo=dt.UTC)
    stub = _UploadsStub(
        [
            {"Key": KEY, "UploadId": "dead", "Initiated": now - dt.timedelta(hours=2)},
            {"Key": KEY, "UploadId": "live", "Initiated": now - dt.timedelta(minutes=5)},
            {"Key": f"{KEY}.other", "UploadId": "other", "Initiated": now - dt.timedelta(days=9)},
        ]
    )
    final = storage.storage_path(f"s3://{BUCKET}/{KEY}")
    removed = leftovers._abort_stale_uploads(stub, final, now.timestamp(), stale_after=3600)
    assert stub.aborted == ["dead"] and removed == ["multipart upload dead"]


def test_a_missing_bucket_fails_before_paying(emu: EmulatorHandle, s3: Any) -> None:
    with pytest.raises(AirflowFailException, match=r"destination: .*Nothing was downloaded or paid"):
        composite(destination="s3://aws_default@no-such-bucket/runs", filename=NAME).execute({})
    assert charges(emu) == 0


def refuse_stac_items(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make writing the STAC Item fail (the data and sidecar can be written); return the real writer."""
    write_json = _storage.write_json_atomically

    def no_stac(final: Any, document: dict[str, Any]) -> None:
        if str(final).endswith(".stac.json"):
            raise PermissionError(13, "Access Denied")
        write_json(final, document)

    monkeypatch.setattr(_storage, "write_json_atomically", no_stac)
    return write_json


def test_a_complete_paid_object_is_kept_when_its_metadata_cannot_be_written(
    emu: EmulatorHandle, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_json = refuse_stac_items(monkeypatch)
    with pytest.raises(RetryableTaskError, match=r"kept as .*nothing is paid again"):
        download()
    kept = [key for key in keys(s3) if key.endswith(".complete")]
    assert len(kept) == 1 and KEY not in keys(s3)  # nothing at the final key without its metadata
    assert f"{KEY}.json" not in keys(s3) and open_uploads(s3) == []
    assert charges(emu) == 1

    monkeypatch.setattr(_storage, "write_json_atomically", write_json)
    uri = download()
    assert uri.endswith(f"{BUCKET}/{KEY}") and keys(s3) == [KEY, f"{KEY}.json", f"{KEY}.stac.json"]
    data = s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()
    sidecar = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{KEY}.json")["Body"].read())
    assert sidecar["size"] == len(data) and sidecar["sha256"] == hashlib.sha256(data).hexdigest()
    assert charges(emu) == 1  # the rerun wrote only the metadata


def test_a_kept_copy_finishes_the_download_when_the_final_key_was_not_deleted(
    emu: EmulatorHandle, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The keep copied the object to its .complete name but could not delete the final key: a re-run finishes it."""
    write_json = refuse_stac_items(monkeypatch)
    with pytest.raises(RetryableTaskError, match="kept as"):
        download()
    kept = next(key for key in keys(s3) if key.endswith(".complete"))
    s3.copy_object(Bucket=BUCKET, Key=KEY, CopySource={"Bucket": BUCKET, "Key": kept})  # the delete "failed"

    monkeypatch.setattr(_storage, "write_json_atomically", write_json)
    download()
    assert keys(s3) == [KEY, f"{KEY}.json", f"{KEY}.stac.json"] and charges(emu) == 1


def test_a_keep_that_fails_too_says_where_the_paid_bytes_are_and_that_overwrite_pays_again(
    emu: EmulatorHandle, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_clearsky.operators import _atomic_writer as writing

    def no_metadata(final: Any, document: dict[str, Any]) -> None:
        raise PermissionError(13, "Access Denied")

    def no_keep(self: Any, key: str) -> Any:
        raise OSError("SlowDown")

    monkeypatch.setattr(_storage, "write_json_atomically", no_metadata)
    monkeypatch.setattr(writing.AtomicWriter, "keep", no_keep)
    with pytest.raises(
        AirflowFailException, match=r"complete and paid \(\d+ bytes, SHA-256 [0-9a-f]{64}\).*pays again"
    ):
        download()
    assert charges(emu) == 1


class FailingCompletes:
    """How ``complete_multipart_upload`` misbehaves: the next ``failures`` calls fail, each after (``lost_answer``)
    or instead of completing the upload; ``completes`` counts the calls. ``list_error``, when set, is what
    every ``list_multipart_uploads`` raises."""

    def __init__(self, failures: int, lost_answer: bool) -> None:
        self.failures = failures
        self.lost_answer = lost_answer
        self.completes = 0
        self.error: BaseException = ConnectionResetError(104, "Connection reset by peer")
        self.list_error: OSError | None = None


class _S3Proxy:
    """The real S3 filesystem, with ``complete_multipart_upload`` and ``list_multipart_uploads`` failing as
    ``state`` says."""

    def __init__(self, fs: Any, state: FailingCompletes) -> None:
        self._fs = fs
        self._state = state

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fs, name)

    def call_s3(self, method: str, **kwargs: Any) -> Any:
        state = self._state
        if method == "list_multipart_uploads" and state.list_error is not None:
            raise state.list_error
        if method == "complete_multipart_upload":
            state.completes += 1
            if state.failures > 0:
                state.failures -= 1
                if state.lost_answer:
                    self._fs.call_s3(method, **kwargs)
                raise state.error
        return self._fs.call_s3(method, **kwargs)


def failing_completes(monkeypatch: pytest.MonkeyPatch, failures: int, *, lost_answer: bool = False) -> FailingCompletes:
    from airflow_provider_clearsky.operators import _storage_sinks as sinks

    real, state = sinks.filesystem, FailingCompletes(failures, lost_answer)
    monkeypatch.setattr(sinks, "filesystem", lambda path: _S3Proxy(real(path), state))
    monkeypatch.setattr(sinks, "COMPLETE_PAUSES", (0.0, 0.0))
    return state


def test_a_failed_complete_is_retried(emu: EmulatorHandle, s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    state = failing_completes(monkeypatch, failures=2)
    download()
    assert state.completes == 3
    assert keys(s3) == [KEY, f"{KEY}.json", f"{KEY}.stac.json"] and open_uploads(s3) == []
    assert charges(emu) == 1


def test_a_complete_whose_answer_is_lost_counts_as_done(
    emu: EmulatorHandle, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = failing_completes(monkeypatch, failures=1, lost_answer=True)
    download()
    assert state.completes == 1  # the object is there: not completed again (S3 would say NoSuchUpload)
    assert charges(emu) == 1
    data = s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()
    sidecar = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{KEY}.json")["Body"].read())
    assert sidecar["sha256"] == hashlib.sha256(data).hexdigest() and open_uploads(s3) == []


def test_an_upload_that_cannot_be_completed_is_left_open_and_completed_by_the_next_run(
    emu: EmulatorHandle, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = failing_completes(monkeypatch, failures=3)
    with pytest.raises(RetryableTaskError, match=r"complete and paid .* left open.*nothing is paid again"):
        download()
    assert open_uploads(s3) == [KEY] and KEY not in keys(s3)  # the paid parts are kept, not aborted
    assert charges(emu) == 1

    state.failures = 3  # S3 still cannot complete it: the next try says so and pays nothing
    with pytest.raises(RetryableTaskError, match=r"cannot tell or complete it now .*nothing was requested or paid"):
        download()
    assert open_uploads(s3) == [KEY] and charges(emu) == 1

    state.failures = 0
    download()
    assert keys(s3) == [KEY, f"{KEY}.json", f"{KEY}.stac.json"] and open_uploads(s3) == []
    data = s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()
    sidecar = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{KEY}.json")["Body"].read())
    assert sidecar["size"] == len(data) and sidecar["sha256"] == hashlib.sha256(data).hexdigest()
    assert charges(emu) == 1  # completed, not downloaded again


def test_an_overwrite_whose_upload_was_left_open_is_completed_not_paid_again(
    emu: EmulatorHandle, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"an older file")
    state = failing_completes(monkeypatch, failures=3)
    with pytest.raises(RetryableTaskError, match="left open"):
        download(overwrite=True)
    assert open_uploads(s3) == [KEY] and charges(emu) == 1  # the older object is still at the key

    state.failures = 0
    download(overwrite=True)  # the retry of that overwrite: completes its upload
    assert open_uploads(s3) == [] and charges(emu) == 1
    data = s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()
    sidecar = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{KEY}.json")["Body"].read())
    assert sidecar["sha256"] == hashlib.sha256(data).hexdigest()


def test_an_open_upload_that_does_not_match_its_sidecar_is_not_trusted(
    emu: EmulatorHandle, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = failing_completes(monkeypatch, failures=3)
    with pytest.raises(RetryableTaskError, match="left open"):
        download()
    sidecar = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{KEY}.json")["Body"].read())
    s3.put_object(Bucket=BUCKET, Key=f"{KEY}.json", Body=json.dumps({**sidecar, "sha256": "0" * 64}).encode())

    state.failures = 0
    with pytest.raises(
        AirflowFailException, match=r"SHA-256 differs from the sidecar's.*Nothing was requested or paid"
    ):
        download()
    assert f"{KEY}.json" not in keys(s3) and charges(emu) == 1  # a file without sidecar: refused, never paid for
    with pytest.raises(AirflowFailException, match="not known to be a complete download"):
        download()
    assert charges(emu) == 1


def test_a_failed_complete_over_identical_bytes_counts_as_done_and_drops_the_parts(
    emu: EmulatorHandle, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    download()
    failing_completes(monkeypatch, failures=3)
    download(overwrite=True)  # S3 never completes it, but the key already holds these very bytes (same ETag)
    assert open_uploads(s3) == [] and charges(emu) == 2


class _TaskTimeout(BaseException):
    """Like Airflow's AirflowTaskTimeout, a BaseException raised in the middle of whatever the task does."""


def test_a_task_timeout_while_completing_leaves_the_paid_parts_open(
    emu: EmulatorHandle, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = failing_completes(monkeypatch, failures=1)
    state.error = _TaskTimeout()
    with pytest.raises(_TaskTimeout):
        download()
    assert open_uploads(s3) == [KEY]  # not aborted: the next try completes it

    download()
    assert keys(s3) == [KEY, f"{KEY}.json", f"{KEY}.stac.json"] and open_uploads(s3) == [] and charges(emu) == 1


def s3fs_error(code: str, message: str, operation: str) -> OSError:
    """The exception s3fs raises for an S3 error answer (botocore's ClientError as its cause)."""
    from botocore.exceptions import ClientError
    from s3fs.errors import translate_boto_error

    error: OSError = translate_boto_error(ClientError({"Error": {"Code": code, "Message": message}}, operation))
    return error


def download_left_open(monkeypatch: pytest.MonkeyPatch) -> FailingCompletes:
    """Download once with S3 failing every completion: the paid bytes stay in an open upload; S3 heals then."""
    state = failing_completes(monkeypatch, failures=3)
    with pytest.raises(RetryableTaskError, match="left open"):
        download()
    state.failures = 0
    return state


def test_a_left_open_upload_that_s3_will_not_list_fails_instead_of_paying_again(
    emu: EmulatorHandle, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = download_left_open(monkeypatch)
    state.list_error = s3fs_error("AccessDenied", "Access Denied", "ListMultipartUploads")
    with pytest.raises(
        AirflowFailException,
        match=r"cannot list the key's uploads .*Nothing was requested or paid.*ListBucketMultipartUploads",
    ):
        download()
    assert open_uploads(s3) == [KEY] and charges(emu) == 1  # the paid bytes still wait, nothing paid twice
    state.list_error = s3fs_error("ExpiredToken", "The token has expired", "ListMultipartUploads")
    with pytest.raises(RetryableTaskError, match=r"cannot tell or complete it now .*nothing was requested"):
        download()  # not a missing permission: the next try may list them

    state.list_error = None
    download()  # listing allowed again: the upload is completed
    assert keys(s3) == [KEY, f"{KEY}.json", f"{KEY}.stac.json"] and open_uploads(s3) == [] and charges(emu) == 1


def test_an_overwrite_that_cannot_list_open_uploads_pays_again_as_asked(
    emu: EmulatorHandle, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = download_left_open(monkeypatch)
    state.list_error = s3fs_error("AccessDenied", "Access Denied", "ListMultipartUploads")
    download(overwrite=True)
    assert KEY in keys(s3) and charges(emu) == 2


def test_an_open_upload_s3_will_never_complete_fails_at_once_instead_of_retrying(
    emu: EmulatorHandle, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = download_left_open(monkeypatch)
    (upload_id,) = [upload["UploadId"] for upload in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])]
    state.failures, state.completes = 3, 0
    state.error = s3fs_error("InvalidPart", "One or more parts could not be found.", "CompleteMultipartUpload")
    with pytest.raises(AirflowFailException, match=rf"refuses to complete .*{upload_id}.*InvalidPart.*Nothing was"):
        download()
    assert state.completes == 1  # not retried: it cannot succeed
    assert open_uploads(s3) == [KEY] and charges(emu) == 1  # left for someone to look at, nothing paid twice

    state.failures = 3
    state.error = s3fs_error("IncompleteBody", "The request body ended early.", "CompleteMultipartUpload")
    with pytest.raises(RetryableTaskError, match="cannot tell or complete it now"):  # the same errno, not for good
        download()
    assert open_uploads(s3) == [KEY] and charges(emu) == 1
