"""Which sink failures are retried and which become dead letters."""

from __future__ import annotations

import psycopg
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from obstore.exceptions import GenericError, PermissionDeniedError, UnauthenticatedError
from psycopg_pool import PoolTimeout

from gateway.errors import PermanentSinkError, RetryableSinkError
from gateway.sinks import case_registry_postgres, objects_s3


def client_error(status: int, code: str, message: str = "") -> ClientError:
    response = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "PutObject")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "error",
    [
        client_error(500, "InternalError"),
        client_error(503, "SlowDown"),
        client_error(400, "RequestTimeout"),
        client_error(403, "RequestTimeTooSkewed"),
        client_error(429, "TooManyRequests"),
        EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
        ConnectTimeoutError(endpoint_url="http://127.0.0.1:9"),
        ReadTimeoutError(endpoint_url="http://127.0.0.1:9"),
    ],
    ids=lambda error: (
        error.response["Error"]["Code"] if isinstance(error, ClientError) else type(error).__name__
    ),
)
def test_s3_failures_that_pass_are_retried(error: Exception) -> None:
    assert isinstance(objects_s3.sink_error(error, "putting k"), RetryableSinkError)


@pytest.mark.parametrize(
    "error",
    [
        client_error(404, "NoSuchBucket", "The specified bucket does not exist"),
        client_error(403, "AccessDenied", "Access Denied"),
        client_error(400, "InvalidArgument"),
        client_error(400, "BadDigest", "The SHA256 you specified did not match"),
        NoCredentialsError(),
    ],
    ids=lambda error: (
        error.response["Error"]["Code"] if isinstance(error, ClientError) else type(error).__name__
    ),
)
def test_s3_failures_that_never_pass_are_dead_letters(error: Exception) -> None:
    assert isinstance(objects_s3.sink_error(error, "putting k"), PermanentSinkError)


def test_the_dead_letter_carries_the_servers_code_and_message() -> None:
    error = objects_s3.sink_error(
        client_error(404, "NoSuchBucket", "The specified bucket does not exist"), "putting k"
    )
    assert str(error) == "putting k: NoSuchBucket: The specified bucket does not exist"


def obstore_answer(kind: type[Exception], status: str, code: str, message: str) -> Exception:
    """An obstore error as object_store words it: the status, then the S3 error document,
    then a multi-line debug dump."""
    return kind(
        f"Error performing PUT http://127.0.0.1:9000/cgt/k in 2ms - Server returned non-2xx "
        f'status code: {status}: <?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}'
        f"</Code><Message>{message}</Message><Key>k</Key></Error>\n\nDebug source:\nRetryError"
    )


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (obstore_answer(GenericError, "503 Service Unavailable", "SlowDown", "Slow"), "retry"),
        (obstore_answer(GenericError, "500 Internal Server Error", "InternalError", ""), "retry"),
        (
            obstore_answer(PermissionDeniedError, "403 Forbidden", "RequestTimeTooSkewed", ""),
            "retry",
        ),
        (obstore_answer(GenericError, "400 Bad Request", "RequestTimeout", ""), "retry"),
        (
            GenericError(
                "Generic S3 error: Error performing PUT http://127.0.0.1:9/cgt/k in 101ms,"
                " after 1 retries - HTTP error: error sending request\n\nDebug source:"
            ),
            "retry",
        ),
        (
            obstore_answer(FileNotFoundError, "404 Not Found", "NoSuchBucket", "No bucket"),
            "dead",
        ),
        (obstore_answer(PermissionDeniedError, "403 Forbidden", "AccessDenied", "Denied"), "dead"),
        (obstore_answer(PermissionDeniedError, "403 Forbidden", "InvalidAccessKeyId", ""), "dead"),
        (obstore_answer(GenericError, "400 Bad Request", "BadDigest", "SHA256 mismatch"), "dead"),
        (UnauthenticatedError("no credentials"), "dead"),
    ],
    ids=lambda value: "" if isinstance(value, str) else type(value).__name__,
)
def test_obstore_failures(error: Exception, kind: str) -> None:
    expected = RetryableSinkError if kind == "retry" else PermanentSinkError
    assert isinstance(objects_s3.sink_error(error, "putting k"), expected)


def test_an_obstore_dead_letter_carries_the_servers_code_and_message_on_one_line() -> None:
    error = objects_s3.sink_error(
        obstore_answer(FileNotFoundError, "404 Not Found", "NoSuchBucket", "No such bucket"),
        "putting k",
    )
    assert str(error) == "putting k: NoSuchBucket: No such bucket"
    refused = objects_s3.sink_error(
        GenericError("connection refused\n\nDebug source:"), "putting k"
    )
    assert str(refused) == "putting k: GenericError: connection refused"


def test_s3_locations() -> None:
    assert objects_s3.parse_location("s3://cgt-objects") == ("cgt-objects", "")
    assert objects_s3.parse_location("s3://cgt-objects/city/a/") == ("cgt-objects", "city/a/")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (psycopg.OperationalError("server closed the connection unexpectedly"), RetryableSinkError),
        (PoolTimeout("couldn't get a connection after 5.00 sec"), RetryableSinkError),
        (psycopg.errors.SerializationFailure("could not serialize access"), RetryableSinkError),
        (psycopg.errors.AdminShutdown("terminating connection"), RetryableSinkError),
        (
            psycopg.errors.InsufficientPrivilege("permission denied for table cases"),
            PermanentSinkError,
        ),
        (psycopg.errors.UndefinedTable('relation "cases" does not exist'), PermanentSinkError),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else "",
)
def test_postgres_failures(error: Exception, kind: type[Exception]) -> None:
    assert isinstance(case_registry_postgres.sink_error(error, "registering cases"), kind)
