"""Objects in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW).

The requests go through obstore (the Rust `object_store` crate of Apache Arrow), which
spends a tenth of boto3's client CPU on a report-sized PUT (docs/decisions.md, "The S3
client"). boto3 stays for what it does best: finding where and as whom to connect the
standard AWS ways (AWS_ENDPOINT_URL_S3, AWS_PROFILE and the shared config files, instance
roles, refreshed credentials) and the start-up check of the bucket.

Keys are those of `gateway.object_keys`, under an optional prefix. Every upload carries
its SHA-256 (`x-amz-checksum-sha256`), which S3 and MinIO check before they store the
object; large files go multipart with a SHA-256 per part. A file is checked against the
SHA-256 it was recorded with before it is sent, so a spool file damaged on disk is refused
here rather than stored. An original whose key is already in the bucket at the same size
is not sent again: its key is its SHA-256, so a HEAD is proof enough.

Failures are split for the outbox: no answer, a timeout, 5xx, throttling or a skewed
clock may pass, so they are retried with backoff (a few times within one delivery, with
jitter; then the outbox backs off); any other 4xx (no such bucket, access denied, a bad
key) will not pass by itself and becomes a dead letter carrying the server's code and
message, for an operator to fix and replay (`gateway outbox retry`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
import botocore.config
import obstore
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from obstore.auth.boto3 import Boto3CredentialProvider
from obstore.exceptions import (
    BaseError,
    InvalidPathError,
    NotFoundError,
    NotSupportedError,
    UnauthenticatedError,
)
from obstore.store import S3Store

from gateway.errors import PermanentSinkError, RetryableSinkError, SinkError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

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
# obstore's errors are text: object_store's retry error names the HTTP status, and the
# server's S3 error document (its Code and Message) follows it.
_STATUS = re.compile(r"status code: (\d{3})")
_CODE = re.compile(r"<Code>([^<]*)</Code>")
_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")
# Never the server's answer: the request could not be made as configured.
_NEVER_PASSES = (InvalidPathError, NotSupportedError, UnauthenticatedError)
# Files that reach this size go multipart (obstore's parts run concurrently).
_PART_CONCURRENCY = 4


def parse_location(url: str) -> tuple[str, str]:
    """s3://BUCKET[/PREFIX] to (bucket, prefix ending in "/" or empty)."""
    parts = urlsplit(url)
    prefix = parts.path.strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


def _answer(status: int, code: str, message: str, doing: str) -> SinkError:
    text = f"{doing}: {code}: {message}".rstrip(": ")
    if status >= 500 or status in (408, 429) or code in _TRANSIENT_CODES or status == 0:
        return RetryableSinkError(text)
    return PermanentSinkError(text)


def sink_error(error: Exception, doing: str) -> SinkError:
    """The outbox's view of an S3 failure (obstore's or boto3's): retry it later, or
    dead-letter it."""
    if isinstance(error, ClientError):
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        details = error.response.get("Error", {})
        return _answer(status, str(details.get("Code", status)), details.get("Message", ""), doing)
    if isinstance(error, (NoCredentialsError, *_NEVER_PASSES)):
        return PermanentSinkError(f"{doing}: {type(error).__name__}: {_first_line(error)}")
    if isinstance(error, BaseError | FileNotFoundError):
        text = str(error)
        found = _STATUS.search(text)
        if found is not None:
            code, message = _CODE.search(text), _MESSAGE.search(text)
            return _answer(
                int(found.group(1)),
                code.group(1) if code else found.group(1),
                message.group(1) if message else "",
                doing,
            )
    # Connection refused or reset, timeouts, a proxy in the way: the network, not us.
    return RetryableSinkError(f"{doing}: {type(error).__name__}: {_first_line(error)}")


def _first_line(error: Exception) -> str:
    """obstore appends a multi-line debug dump to its messages; the log needs one line."""
    return str(error).split("\n", 1)[0]


def _virtual_host(endpoint: str, bucket: str) -> str:
    """The virtual-hosted form of an endpoint (obstore wants the bucket in it)."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{bucket}.{parts.netloc}"


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
            ),
        )
        self.store = S3Store(self.bucket, **self._store_config(session))

    def _store_config(self, session: boto3.session.Session) -> dict[str, Any]:
        """obstore's settings, from what boto3 resolved and `[s3]`."""
        settings = self.settings
        endpoint = self.client.meta.endpoint_url
        config: dict[str, Any] = {
            "region": self.client.meta.region_name,
            "checksum_algorithm": "sha256",
            "virtual_hosted_style_request": not settings.path_style,
            "endpoint": endpoint if settings.path_style else _virtual_host(endpoint, self.bucket),
            "client_options": {
                "allow_http": urlsplit(endpoint).scheme == "http",
                "connect_timeout": timedelta(seconds=settings.connect_timeout_s),
                "timeout": timedelta(seconds=settings.read_timeout_s),
                "pool_max_idle_per_host": "32",
                **(
                    {"root_certificate": settings.ca_bundle.read_bytes()}
                    if settings.ca_bundle
                    else {}
                ),
            },
            "retry_config": {
                "max_retries": settings.max_attempts - 1,
                "retry_timeout": timedelta(seconds=settings.read_timeout_s * settings.max_attempts),
            },
        }
        if settings.server_side_encryption is not None:
            config["server_side_encryption"] = settings.server_side_encryption
            if settings.kms_key_id:
                config["sse_kms_key_id"] = settings.kms_key_id
        if session.get_credentials() is not None:
            config["credential_provider"] = Boto3CredentialProvider(session)
        return config

    def key_of(self, key: str) -> str:
        return self.prefix + key

    def put_file(self, key: str, path: Path, *, sha256: str, content_type: str) -> None:
        full = self.key_of(key)
        size = path.stat().st_size
        if self._present(full, size):
            return
        multipart = size >= self.settings.multipart_threshold_bytes
        if multipart:  # read twice (checked, then sent in parts) rather than held whole
            with path.open("rb") as file:
                digest = hashlib.file_digest(file, "sha256").hexdigest()
            body: Path | bytes = path
        else:
            body = path.read_bytes()
            digest = hashlib.sha256(body).hexdigest()
        if digest != sha256:
            raise PermanentSinkError(f"putting {full}: {path.name} does not match its SHA-256")
        try:
            obstore.put(
                self.store,
                full,
                body,
                attributes={"Content-Type": content_type},
                use_multipart=multipart,
                chunk_size=self.settings.multipart_chunk_bytes,
                max_concurrency=_PART_CONCURRENCY,
            )
        except (BaseError, OSError) as error:
            raise sink_error(error, f"putting {full}") from error

    def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None:
        full = self.key_of(key)
        try:
            obstore.put(
                self.store, full, data, attributes={"Content-Type": content_type},
                use_multipart=False,
            )  # fmt: skip
        except (BaseError, OSError) as error:
            raise sink_error(error, f"putting {full}") from error

    def read(self, key: str) -> bytes | None:
        """An object's bytes; None if there is no such key."""
        full = self.key_of(key)
        try:
            return bytes(obstore.get(self.store, full).bytes())
        except (FileNotFoundError, NotFoundError):
            return None
        except (BaseError, OSError) as error:
            raise sink_error(error, f"getting {full}") from error

    def get_file(self, key: str, path: Path) -> bool:
        """Download `key` to `path` (whole, or not at all); False if there is no such key."""
        full = self.key_of(key)
        partial = path.with_name(path.name + ".part")
        try:
            result = obstore.get(self.store, full)
            with partial.open("wb") as file:
                for chunk in result:
                    file.write(chunk)
        except (FileNotFoundError, NotFoundError):
            partial.unlink(missing_ok=True)
            return False
        except (BaseError, OSError) as error:
            partial.unlink(missing_ok=True)
            raise sink_error(error, f"getting {full}") from error
        partial.replace(path)
        return True

    def delete(self, keys: Sequence[str]) -> None:
        """Delete keys (obstore sends S3's bulk deletes); missing ones are no error."""
        if not keys:
            return
        try:
            obstore.delete(self.store, [self.key_of(key) for key in keys])
        except (BaseError, OSError) as error:
            raise sink_error(error, f"deleting {len(keys)} objects") from error

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
            head = obstore.head(self.store, key)
        except (FileNotFoundError, NotFoundError):
            return False
        except (BaseError, OSError) as error:
            raise sink_error(error, f"checking {key}") from error
        return head["size"] == size

    def flush(self) -> None:
        """Nothing to do: S3 answers a PUT only once the object is durable."""

    def close(self) -> None:
        self.client.close()
