"""The running gateway: the intake in this process, the pipeline in a second one (or a thread).

    MQTT ─▶ MqttLink ─▶ CommitLoop ─▶ inbox.db ─▶ Pipeline ─▶ outbox.db ─▶ sinks
            (paho thread)  (commit, then PUBACK)      (own process, own MQTT link)
                       └▶ CaseDesk ─▶ registry (casework commands: commit, PUBACK, answer)

The two sides share nothing but the two SQLite files, so the pipeline can run on the
other core. The pipeline process dies with its parent (PR_SET_PDEATHSIG), so killing
the gateway kills all of it, which is what the crash tests and the operators expect.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from structlog.typing import FilteringBoundLogger

from gateway import logs
from gateway.cases.timekeeping import timekeeper
from gateway.config import GatewayConfig
from gateway.devices.device_registry import FILE_NAME as DEVICES_FILE
from gateway.devices.gate import DeviceGate
from gateway.devices.limits import Buckets, DeviceQuotas
from gateway.errors import ConfigError
from gateway.geo.places import load_locator
from gateway.geo.report_location import Geo
from gateway.media.pool import MediaPool
from gateway.normalize.codes import CodeProfile, load_profile
from gateway.protocols import casework
from gateway.protocols.terminal import UPLINK_SUBSCRIPTIONS
from gateway.runtime.case_desk import CaseDesk
from gateway.runtime.case_events import CaseEventPublisher
from gateway.runtime.commit_loop import CommitLoop
from gateway.runtime.intake import Intake
from gateway.runtime.ops_http import OpsServer, Probes
from gateway.runtime.pipeline import Pipeline, PipelineTuning
from gateway.runtime.task_dispatch import TaskDispatcher
from gateway.runtime.wiring import (
    check_cluster,
    check_secrets,
    open_objects,
    open_registry,
    open_spool,
    open_stores,
    shared_connection,
)
from gateway.settings import redact_url
from gateway.sinks.bus import MqttPublisher
from gateway.sinks.ports import Publisher
from gateway.store.levels import StoreWatch
from gateway.store.outbox import Backoff
from gateway.transports.mqtt import MqttLink, Received

if TYPE_CHECKING:
    from gateway.console.server import ConsoleServer
    from gateway.console.sources import InstanceStatus
    from gateway.store.cluster import InstanceClaim


def build_pipeline(
    config: GatewayConfig, link: MqttLink, profile: CodeProfile, log: FilteringBoundLogger
) -> Pipeline:
    settings = config.pipeline
    inbox, outbox = open_stores(config, "pipeline")
    objects = open_objects(config)
    return Pipeline(
        inbox=inbox,
        outbox=outbox,
        spool=open_spool(config, objects),
        media=MediaPool(config.media.workers, config.media.timeout_s, log),
        registry=open_registry(config, log),
        objects=objects,
        publisher=MqttPublisher(link),
        profile=profile,
        window=config.acceptance.window(),
        geo=Geo(load_locator(config.geo), config.geo.checks.rules()),
        settings=PipelineTuning(
            batch=settings.batch,
            idle_poll_s=settings.idle_poll_ms / 1000,
            publish_timeout_s=settings.publish_timeout_s,
            media_max_failures=settings.media_max_failures,
            backoff=Backoff(settings.retry_first_s, settings.retry_max_s),
            housekeeping_s=config.store.housekeeping_s,
            upload_ttl_s=config.store.upload_ttl_s,
            orphan_ttl_s=config.store.orphan_ttl_s,
            media_batch=config.media.batch,
            photo=config.media.photo(),
            voice=config.media.voice(),
        ),
        log=log,
    )


def run_pipeline(config: GatewayConfig, stop: threading.Event, log: FilteringBoundLogger) -> None:
    """The pipeline with its own outbound MQTT connection, until `stop` is set."""
    link = MqttLink(config.mqtt, log, client_id=f"{config.mqtt.client_id}-out", persistent=False)
    link.start()
    pipeline = build_pipeline(
        config, link, load_profile(config.codes_dir, config.codes.profile), log
    )
    tasks = start_task_dispatcher(config, MqttPublisher(link), stop, log)
    events = start_case_events(config, MqttPublisher(link), stop, log)
    try:
        pipeline.run(stop)
    finally:
        stop.set()  # the pipeline may also end on its own (a bug): take the dispatchers along
        tasks.join(30)
        events.join(30)
        link.stop()


def start_task_dispatcher(
    config: GatewayConfig, publisher: Publisher, stop: threading.Event, log: FilteringBoundLogger
) -> threading.Thread:
    """Tasks a backend inserted into the registry, published by their own thread (with its
    own registry connection: the registry sink's is busy on the sink's thread)."""
    return TaskDispatcher(
        open_registry(config, log),
        publisher,
        poll_s=config.tasks.poll_s,
        batch=config.tasks.batch,
        publish_timeout_s=config.pipeline.publish_timeout_s,
        log=log,
    ).start("tasks", stop)


def start_case_events(
    config: GatewayConfig, publisher: Publisher, stop: threading.Event, log: FilteringBoundLogger
) -> threading.Thread:
    """Case events for casework backends, published by their own thread (and registry
    connection), like the tasks."""
    return CaseEventPublisher(
        open_registry(config, log),
        publisher,
        poll_s=config.pipeline.case_events_poll_s,
        batch=config.pipeline.case_events_batch,
        publish_timeout_s=config.pipeline.publish_timeout_s,
        log=log,
    ).start("case-events", stop)


def _pipeline_process(config_json: str, parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    config = GatewayConfig.model_validate_json(config_json)
    logs.setup(config.log.level, config.log.format)
    log = logs.get("gateway.pipeline")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    log.info("pipeline.started", pid=os.getpid())
    run_pipeline(config, stop, log)


def _die_with_parent(parent_pid: int) -> None:
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


class Gateway:
    def __init__(self, config: GatewayConfig, log: FilteringBoundLogger) -> None:
        self.config = config
        self.log = log
        # Everything that can be wrong with the set-up fails here, before any connection.
        self.profile = load_profile(config.codes_dir, config.codes.profile)
        load_locator(config.geo)
        check_secrets(config)
        check_cluster(config)
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.claim = self._claim_instance_id()
        self.inbox, self.outbox = open_stores(config, "intake")
        clustered = config.cluster.url is not None
        # In a cluster no instance keeps a broker session past its death: the broker would
        # go on queueing that instance's share of the shared subscription for nobody
        # (docs/cluster.md, "Broker sessions"; measured in docs/cluster-broker.md).
        self.link = MqttLink(
            config.mqtt,
            log,
            subscriptions=(*UPLINK_SUBSCRIPTIONS, casework.COMMANDS_SUBSCRIPTION),
            on_message=self._received,
            persistent=not clustered,
        )
        # Casework backends' commands, on a thread and registry connection of their own.
        self.desk = CaseDesk(
            open_registry(config, log),
            timekeeper(config.cases, config.acceptance.zone),
            self.link,
            log.bind(part="case-desk"),
        )
        self.watch = StoreWatch(
            config.data_dir,
            config.inbox_path,
            config.outbox_path,
            config.spool_dir,
            config.store.limits(),
            log,
            shared=shared_connection(config, "watch") if clustered else None,
        )
        # The intake's own connection serves its identity check and budgets too: they are
        # asked on the same thread, inside its batches.
        self.gate = DeviceGate(
            self.inbox.conn if clustered else config.data_dir / DEVICES_FILE, log
        )
        self.intake = CommitLoop(
            Intake(
                self.inbox,
                self.outbox,
                self.profile,
                log,
                lambda: self.watch.levels,
                self.gate,
                self._quotas(),
            ),
            self.link,
            config.limits.wire(),
            config.store,
            log,
        )
        self._stop_pipeline = threading.Event()
        self._pipeline: BaseProcess | threading.Thread | None = None
        address = config.metrics.address()
        self.ops = None if address is None else OpsServer(address, self._probes(), log)
        self.console: ConsoleServer | None = None
        if config.console.listen is not None:
            from gateway.console.server import ConsoleServer  # noqa: PLC0415 - Flask only when asked

            self.console = ConsoleServer(config, log.bind(part="console"), self._console_status)

    def _claim_instance_id(self) -> InstanceClaim | None:
        """In a cluster, this instance's id (its MQTT client id), refused if taken."""
        url = self.config.cluster.url
        if url is None:
            return None
        from gateway.store.cluster import InstanceClaim, InstanceIdTaken  # noqa: PLC0415 - a cluster's

        try:
            return InstanceClaim(url, self.config.mqtt.client_id, self.log)
        except InstanceIdTaken as error:
            raise ConfigError([f"mqtt.client_id: {error}"]) from None

    def _quotas(self) -> DeviceQuotas:
        """Each device's budgets: in memory, or in a cluster shared by every instance."""
        if self.config.cluster.url is None:
            return DeviceQuotas(self.config.limits.device())
        from gateway.devices.shared_budgets import SharedTokenBuckets  # noqa: PLC0415 - a cluster's

        conn = self.inbox.conn

        def shared(name: str, burst: int, period_s: float) -> Buckets:
            return SharedTokenBuckets(conn, name, burst, period_s)

        return DeviceQuotas(self.config.limits.device(), time.time, shared)

    def _probes(self) -> Probes:
        config = self.config
        cluster = None
        if config.cluster.url is not None:
            from gateway.store.cluster import ClusterProbe  # noqa: PLC0415 - a cluster's

            cluster = ClusterProbe(config.cluster.url, config.mqtt.client_id)
        return Probes(
            broker_connected=lambda: self.link.connected,
            pipeline_alive=self.pipeline_alive,
            levels=lambda: self.watch.levels,
            inbox=config.inbox_path,
            outbox=config.outbox_path,
            spool=config.spool_dir,
            cluster=cluster,
        )

    def _received(self, message: Received) -> None:
        if casework.is_command_topic(message.topic):
            self.desk.submit(message)
        else:
            self.intake.submit(message)

    def start(self) -> None:
        if self.config.pipeline.mode == "process":
            context = multiprocessing.get_context("spawn")
            self._pipeline = context.Process(
                target=_pipeline_process,
                args=(self.config.model_dump_json(), os.getpid()),
                name="cgt-pipeline",
            )
        else:
            self._pipeline = threading.Thread(
                target=run_pipeline,
                args=(self.config, self._stop_pipeline, self.log.bind(part="pipeline")),
                name="pipeline",
                daemon=True,
            )
        self._pipeline.start()
        self.watch.start()
        self.intake.start()
        self.desk.start()
        self.link.start()
        if self.ops is not None:
            self.ops.start()
        if self.console is not None:
            self.console.start()
        self.log.info(
            "gateway.started",
            broker=self.config.mqtt.broker,
            username=self.config.mqtt.username,
            ca_file=str(tls.ca_file) if (tls := self.config.mqtt.tls) and tls.ca_file else None,
            data_dir=str(self.config.data_dir),
            pipeline=self.config.pipeline.mode,
            cluster=redact_url(self.config.cluster.url) if self.config.cluster.url else None,
        )

    def stop(self) -> None:
        if self.console is not None:
            self.console.stop()
        if self.ops is not None:
            self.ops.stop()
        self.desk.stop()  # before the link: a command it committed is acked and answered
        self.link.stop()
        self.intake.stop()
        self.watch.stop()
        self._stop_pipeline.set()
        if isinstance(self._pipeline, BaseProcess):
            if self._pipeline.pid is not None and self._pipeline.is_alive():
                os.kill(self._pipeline.pid, signal.SIGTERM)
            self._pipeline.join(30)
        elif self._pipeline is not None:
            self._pipeline.join(30)
        self.gate.close()
        self.inbox.close()
        self.outbox.close()
        if self.claim is not None:
            self.claim.close()
        self.log.info("gateway.stopped", committed=self.intake.committed)

    def pipeline_alive(self) -> bool:
        return self._pipeline is not None and self._pipeline.is_alive()

    def _console_status(self) -> InstanceStatus:
        from gateway.console.sources import InstanceStatus  # noqa: PLC0415 - with the console
        from gateway.media.pool import default_workers  # noqa: PLC0415
        from gateway.runtime.rejections import DOOR  # noqa: PLC0415

        levels = self.watch.levels
        return InstanceStatus(
            instance=self.config.mqtt.client_id,
            broker=redact_url(self.config.mqtt.broker),
            broker_connected=self.link.connected,
            pipeline_alive=self.pipeline_alive(),
            media_workers=self.config.media.workers or default_workers(),
            spool_bytes=levels.spool_bytes,
            outbox_reports=levels.outbox_reports,
            free_bytes=levels.free_bytes,
            refusing=levels.report_refusal or levels.media_refusal,
            door=DOOR.snapshot(),
        )


def serve(config: GatewayConfig, log: FilteringBoundLogger) -> int:
    """Run until SIGTERM or SIGINT; exit non-zero if the pipeline dies under us."""
    gateway = Gateway(config, log)
    stop = threading.Event()

    def request_stop(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    gateway.start()
    status = 0
    while not stop.wait(1.0):
        if not gateway.pipeline_alive():
            log.error("pipeline.died")
            status = 1
            break
    gateway.stop()
    return status
