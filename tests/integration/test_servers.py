"""The servers the suite starts for itself behave like the real ones, failures included."""

from __future__ import annotations

import psycopg
import pytest
from botocore.exceptions import EndpointConnectionError

from tests.servers import PostgresCluster, S3Server


def test_postgres_keeps_its_data_across_a_restart_and_drops_old_sessions(
    postgres: PostgresCluster, postgres_dsn: str
) -> None:
    with psycopg.connect(postgres_dsn) as conn:
        conn.execute("CREATE TABLE cases (id serial PRIMARY KEY, report_id text NOT NULL)")
        conn.execute("INSERT INTO cases (report_id) VALUES ('r-1'), ('r-2')")
        conn.commit()
    before = psycopg.connect(postgres_dsn, autocommit=True)
    try:
        assert before.execute("SELECT count(*) FROM cases").fetchone() == (2,)

        postgres.restart()

        with pytest.raises(psycopg.OperationalError):
            before.execute("SELECT count(*) FROM cases")
    finally:
        before.close()
    with psycopg.connect(postgres_dsn) as conn:
        rows = conn.execute("SELECT report_id FROM cases ORDER BY id").fetchall()
    assert rows == [("r-1",), ("r-2",)]


def test_postgres_gives_each_test_an_empty_database(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("SELECT to_regclass('cases')").fetchone() == (None,)
        assert conn.execute("SELECT current_setting('fsync')").fetchone() == ("on",)


def test_s3_keeps_its_objects_through_an_outage(s3: S3Server) -> None:
    s3.create_bucket("cgt-objects")
    client = s3.client(max_attempts=1, connect_timeout=1, read_timeout=1)
    client.put_object(Bucket="cgt-objects", Key="reports/1.json", Body=b'{"n": 1}')

    s3.outage()

    with pytest.raises(EndpointConnectionError):
        client.put_object(Bucket="cgt-objects", Key="reports/2.json", Body=b'{"n": 2}')

    s3.resume()

    client.put_object(Bucket="cgt-objects", Key="reports/3.json", Body=b'{"n": 3}')
    assert s3.objects("cgt-objects") == {
        "reports/1.json": b'{"n": 1}',
        "reports/3.json": b'{"n": 3}',
    }


@pytest.mark.parametrize("attempt", [1, 2])
def test_s3_gives_each_test_an_empty_server(s3: S3Server, attempt: int) -> None:
    client = s3.client()
    assert client.list_buckets()["Buckets"] == []
    s3.create_bucket("cgt-objects")
    client.put_object(Bucket="cgt-objects", Key=f"left-over-{attempt}", Body=b"x")
