"""The S3 object store against a real S3-compatible server: what goes over the wire.

moto's server stores what it is given without checking checksums (measured: a wrong
`x-amz-checksum-sha256` is accepted), so these tests check the requests themselves, as the
server recorded them; S3 and MinIO verify the checksum before storing.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import PermanentSinkError, RetryableSinkError
from gateway.sinks.objects_s3 import S3ObjectStore
from gateway.sinks.settings import S3Settings
from tests.servers import S3Server

BUCKET = "cgt-store"
MiB = 1024 * 1024


SECRET_ENV = "CGT_TEST_S3_SECRET"  # noqa: S105 - a variable's name, not a secret


def store_for(s3: S3Server, **settings: Any) -> S3ObjectStore:
    os.environ[SECRET_ENV] = "testing"
    return S3ObjectStore(
        f"s3://{BUCKET}/city",
        S3Settings(
            endpoint_url=s3.endpoint_url,
            region="us-east-1",
            access_key_id="testing",
            secret_access_key_env=SECRET_ENV,
            path_style=True,
            **settings,
        ),
    )


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@pytest.fixture
def bucket(s3: S3Server) -> S3Server:
    s3.create_bucket(BUCKET)
    return s3


def test_every_put_carries_its_sha256_and_an_existing_original_is_not_sent_again(
    bucket: S3Server, tmp_path: Path
) -> None:
    store = store_for(bucket, server_side_encryption="AES256")
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(os.urandom(300_000))
    digest = hashlib.sha256(photo.read_bytes()).hexdigest()
    key = f"originals/sha256/{digest[:2]}/{digest}.jpg"

    with bucket.recording() as sent:
        store.put_file(key, photo, sha256=digest, content_type="image/jpeg")
        store.put_bytes(
            "reports/r-1/report.json", b'{"case_no": "E1"}', content_type="application/json"
        )
        store.put_file(key, photo, sha256=digest, content_type="image/jpeg")  # sent again

    photo_put, json_put = (request for request in sent if request.method == "PUT")
    assert photo_put.path == f"{BUCKET}/city/{key}"
    assert photo_put.headers["x-amz-checksum-sha256"] == sha256_b64(photo.read_bytes())
    assert photo_put.headers["x-amz-server-side-encryption"] == "AES256"
    assert photo_put.headers["content-type"] == "image/jpeg"
    assert json_put.path == f"{BUCKET}/city/reports/r-1/report.json"
    assert json_put.headers["x-amz-checksum-sha256"] == sha256_b64(b'{"case_no": "E1"}')
    # The third call: a HEAD found the original, nothing was read back or sent.
    assert [request.method for request in sent] == ["HEAD", "PUT", "PUT", "HEAD"]
    objects = bucket.objects(BUCKET)
    assert objects[f"city/{key}"] == photo.read_bytes()
    head = bucket.client().head_object(Bucket=BUCKET, Key=f"city/{key}")
    assert head["ServerSideEncryption"] == "AES256"
    store.close()


def test_a_file_that_no_longer_matches_its_sha256_is_refused_not_stored(
    bucket: S3Server, tmp_path: Path
) -> None:
    store = store_for(bucket)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8 as received")
    digest = hashlib.sha256(photo.read_bytes()).hexdigest()
    photo.write_bytes(b"\xff\xd8 bit rot here")  # same size, other bytes

    with pytest.raises(PermanentSinkError, match="does not match its SHA-256"):
        store.put_file(f"originals/{digest}.jpg", photo, sha256=digest, content_type="image/jpeg")

    assert bucket.objects(BUCKET) == {}
    store.close()


def test_a_large_file_goes_multipart_with_a_sha256_per_part(
    bucket: S3Server, tmp_path: Path
) -> None:
    store = store_for(bucket, multipart_threshold_bytes=5 * MiB, multipart_chunk_bytes=5 * MiB)
    video = tmp_path / "big.heic"
    data = os.urandom(12 * MiB)
    video.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()

    with bucket.recording() as sent:
        store.put_file(f"originals/sha256/{digest[:2]}/{digest}.heic", video, sha256=digest,
                       content_type="image/heic")  # fmt: skip

    parts = [request for request in sent if "partNumber=" in request.query]
    assert len(parts) == 3  # 5 + 5 + 2 MiB
    assert sorted(request.headers["x-amz-checksum-sha256"] for request in parts) == sorted(
        sha256_b64(data[start : start + 5 * MiB]) for start in range(0, len(data), 5 * MiB)
    )
    assert bucket.objects(BUCKET)[f"city/originals/sha256/{digest[:2]}/{digest}.heic"] == data
    store.close()


def test_a_missing_bucket_is_permanent_and_a_server_away_is_not(
    s3: S3Server, tmp_path: Path
) -> None:
    store = store_for(s3, max_attempts=1, connect_timeout_s=1)
    with pytest.raises(PermanentSinkError, match="NoSuchBucket"):
        store.put_bytes("reports/r-1/report.json", b"{}", content_type="application/json")
    s3.outage()
    with pytest.raises(RetryableSinkError, match="error sending request"):
        store.put_bytes("reports/r-1/report.json", b"{}", content_type="application/json")
    s3.resume()
    store.close()


def test_the_endpoint_and_credentials_come_the_standard_aws_ways(
    bucket: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", bucket.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    store = S3ObjectStore(f"s3://{BUCKET}", S3Settings(path_style=True))

    store.put_bytes("reports/r-9/report.json", b"{}", content_type="application/json")

    assert bucket.objects(BUCKET) == {"reports/r-9/report.json": b"{}"}
    store.close()
