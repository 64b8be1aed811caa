"""Objects in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW) through boto3.

Keys are those of `gateway.object_keys`, under an optional prefix. Every upload carries
its SHA-256 (`x-amz-checksum-sha256`), which S3 and MinIO check before they store the
object; large files go multipart with a SHA-256 per part. An original whose key is
already in the bucket at the same size is not sent again: its key is its SHA-256, so a
HEAD is proof enough, and nothing is read back.

Failures are split for the outbox: no answer, a timeout, 5xx, throttling or a skewed
clock may pass, so they are retried with backoff (botocore retries a few times within
one delivery, with jitter; then the outbox backs off); any other 4xx (no such bucket,
access denied, a bad key) will not pass by itself and becomes a dead letter carrying the
server's code and message, for an operator to fix and replay (`gateway outbox retry`).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
import botocore.config
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from gateway.errors import PermanentSinkError, RetryableSinkError, SinkError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

    from gateway.sinks.settings import S3Settings

# 4xx codes that may pass on their own: the server asks to slow down or wait, the
# request took too long, the clock was off, temporary credentials expired.
_TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "TooManyRequests",
        "RequestTimeTooSkewed",
        "ExpiredToken",
        "OperationAborted",  # a conflicting bucket operation is in progress
    }
)


def parse_location(url: str) -> tuple[str, str]:
    """s3://BUCKET[/PREFIX] to (bucket, prefix ending in "/" or empty)."""
    parts = urlsplit(url)
    prefix = parts.path.strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


def sink_error(error: Exception, doing: str) -> SinkError:
    """The outbox's view of a boto3 failure: retry it later, or dead-letter it."""
    if isinstance(error, ClientError):
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        details = error.response.get("Error", {})
        code = str(details.get("Code", status))
        message = f"{doing}: {code}: {details.get('Message', '')}".rstrip(": ")
        if status >= 500 or status in (408, 429) or code in _TRANSIENT_CODES or status == 0:
            return RetryableSinkError(message)
        return PermanentSinkError(message)
    if isinstance(error, NoCredentialsError):
        return PermanentSinkError(f"{doing}: {error}")
    # Connection refused or reset, timeouts, a proxy in the way: the network, not us.
    return RetryableSinkError(f"{doing}: {type(error).__name__}: {error}")


def _checksum(digest_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(digest_hex)).decode("ascii")


class S3ObjectStore:
    def __init__(self, url: str, settings: S3Settings) -> None:
        self.bucket, self.prefix = parse_location(url)
        self.settings = settings
        secret = settings.secret_access_key()
        session = boto3.session.Session(
            profile_name=settings.profile,
            region_name=settings.region,
            aws_access_key_id=settings.access_key_id if secret else None,
            aws_secret_access_key=secret.get_secret_value() if secret else None,
        )
        self.client: S3Client = session.client(
            "s3",
            endpoint_url=settings.endpoint_url,  # None: AWS_ENDPOINT_URL_S3 and the like
            verify=str(settings.ca_bundle) if settings.ca_bundle else None,
            config=botocore.config.Config(
                s3={"addressing_style": "path" if settings.path_style else "auto"},
                connect_timeout=settings.connect_timeout_s,
                read_timeout=settings.read_timeout_s,
                retries={"mode": "standard", "max_attempts": settings.max_attempts},
                max_pool_connections=32,
                # Only the checksum we attach ourselves (SHA-256), not botocore's default
                # CRC32 besides, which some S3-compatible servers reject.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        self.transfer = TransferConfig(
            multipart_threshold=settings.multipart_threshold_bytes,
            multipart_chunksize=settings.multipart_chunk_bytes,
            max_concurrency=4,
            use_threads=True,
        )

    def key_of(self, key: str) -> str:
        return self.prefix + key

    def _encryption(self) -> dict[str, str]:
        if self.settings.server_side_encryption is None:
            return {}
        extra: dict[str, str] = {"ServerSideEncryption": self.settings.server_side_encryption}
        if self.settings.kms_key_id:
            extra["SSEKMSKeyId"] = self.settings.kms_key_id
        return extra

    def put_file(self, key: str, path: Path, *, sha256: str, content_type: str) -> None:
        full = self.key_of(key)
        size = path.stat().st_size
        if self._present(full, size):
            return
        extra: dict[str, Any] = {"ContentType": content_type, **self._encryption()}
        try:
            if size < self.settings.multipart_threshold_bytes:
                with path.open("rb") as body:
                    self.client.put_object(
                        Bucket=self.bucket,
                        Key=full,
                        Body=body,
                        ChecksumSHA256=_checksum(sha256),
                        **extra,
                    )
            else:  # multipart: botocore computes and sends each part's SHA-256
                self.client.upload_file(
                    str(path),
                    self.bucket,
                    full,
                    ExtraArgs={**extra, "ChecksumAlgorithm": "SHA256"},
                    Config=self.transfer,
                )
        except (ClientError, BotoCoreError) as error:
            raise sink_error(error, f"putting {full}") from error
        except boto3.exceptions.S3UploadFailedError as error:  # multipart, wrapped
            cause = error.__context__
            if isinstance(cause, ClientError | BotoCoreError):
                raise sink_error(cause, f"putting {full}") from error
            raise RetryableSinkError(f"putting {full}: {error}") from error

    def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None:
        full = self.key_of(key)
        extra: dict[str, Any] = {"ContentType": content_type, **self._encryption()}
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=full,
                Body=data,
                ChecksumSHA256=_checksum(hashlib.sha256(data).hexdigest()),
                **extra,
            )
        except (ClientError, BotoCoreError) as error:
            raise sink_error(error, f"putting {full}") from error

    def get_file(self, key: str, path: Path) -> bool:
        """Download `key` to `path` (whole, or not at all); False if there is no such key."""
        full = self.key_of(key)
        partial = path.with_name(path.name + ".part")
        try:
            self.client.download_file(self.bucket, full, str(partial), Config=self.transfer)
        except ClientError as error:
            partial.unlink(missing_ok=True)
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404 or error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return False
            raise sink_error(error, f"getting {full}") from error
        except BotoCoreError as error:
            partial.unlink(missing_ok=True)
            raise sink_error(error, f"getting {full}") from error
        partial.replace(path)
        return True

    def delete(self, keys: Sequence[str]) -> None:
        """Delete keys, a thousand a request (S3's limit); missing ones are no error."""
        for start in range(0, len(keys), 1000):
            batch: list[ObjectIdentifierTypeDef] = [
                {"Key": self.key_of(key)} for key in keys[start : start + 1000]
            ]
            try:
                self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            except (ClientError, BotoCoreError) as error:
                raise sink_error(error, f"deleting {len(batch)} objects") from error

    def bucket_exists(self) -> bool:
        """Whether the bucket is there and ours to use (a HEAD on it)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status in (403, 404):
                return False
            raise sink_error(error, f"checking bucket {self.bucket}") from error
        except BotoCoreError as error:
            raise sink_error(error, f"checking bucket {self.bucket}") from error
        return True

    def _present(self, key: str, size: int) -> bool:
        """Whether `key` holds an object of `size` bytes already (a HEAD, nothing read)."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                return False
            raise sink_error(error, f"checking {key}") from error
        except BotoCoreError as error:
            raise sink_error(error, f"checking {key}") from error
        return head["ContentLength"] == size

    def flush(self) -> None:
        """Nothing to do: S3 answers a PUT only once the object is durable."""

    def close(self) -> None:
        self.client.close()
