"""``nexflow worker``: a process that runs flow runs and handed-off skill runs from the
durable engine's queues.

Gateways with ``flows.run_on: workers`` enqueue runs on the shared Postgres and never
dequeue them; workers do (docs/scale-out.md, "Workers"). With ``skills.run_on: workers``
a chat turn's ``run_skill`` is enqueued too (on ``nexflow-skills``) after the gateway's
permission check and confirmation; a worker spawns it with its own skill runner and
secrets (:mod:`nexflow.skills.remote`). A worker builds the flow host
from the same configuration as a gateway (:func:`nexflow.flow_runtime.build_flow_runtime`:
tools, skills, panels, memory, workspaces, the one budget gate) without the web app or
chat connectors; approval cards and notices its steps post are queued on the shared
outbox for the gateways to deliver.

- **Executor id**: ``flows.executor_id`` (env ``NEXFLOW_FLOWS__EXECUTOR_ID``), else
  ``worker-<host name>``. It must be stable: DBOS resumes a killed worker's runs when a
  worker with the same id starts again (the chart's StatefulSet pod name).
- **Dead workers**: every ``flows.sweep_s`` a worker hands the runs of executors that
  died and never came back to the queue again (:mod:`nexflow.flows.executors`).
- **Stop**: SIGTERM or SIGINT: the running steps are cancelled the way a crash would
  (nothing recorded), DBOS is destroyed and the presence lock freed, so the same id
  resumes them on restart, or another worker's sweep takes them over.
- **Health**: log lines ``worker_started`` / ``flows_swept`` / ``worker_stopped``, and with
  ``--health-port`` a tiny HTTP listener: ``GET /health`` answers 200
  ``{"status": "ok", "executor_id": …}`` while the engine runs, else 503.
- Storage must be Postgres (``storage.url``): a worker on SQLite would have nobody to
  share the queue with; it is refused with exit code 78 (EX_CONFIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import sys
from typing import TYPE_CHECKING

import structlog

from nexflow.config.model import NexflowConfig

if TYPE_CHECKING:
    from nexflow.flows.engine import FlowEngine

log = structlog.get_logger("nexflow.worker")

EX_CONFIG = 78


def worker_id(config: NexflowConfig) -> str:
    """``flows.executor_id``, else ``worker-<host name>``."""
    return config.flows.executor_id or f"worker-{socket.gethostname()}"


def run_worker(config: NexflowConfig, *, health_host: str, health_port: int | None) -> int:
    """Run until SIGTERM/SIGINT; the exit code."""
    if not config.uses_postgres:
        print(
            "nexflow: a worker needs storage on Postgres (storage.url / NEXFLOW_STORAGE__URL "
            "= postgresql://…): workers and gateways share its queue. With SQLite, run flows "
            "in the gateway (flows.run_on: gateway).",
            file=sys.stderr,
        )
        return EX_CONFIG
    if not config.flows.enabled:
        print("nexflow: flows are turned off (flows.enabled): nothing to run", file=sys.stderr)
        return EX_CONFIG
    from nexflow.observability.logging import LogHub, configure_logging

    configure_logging(config.logging.level, config.logging.format, LogHub())
    flows = config.flows.model_copy(update={"executor_id": worker_id(config)})
    worker = Worker(config.model_copy(update={"flows": flows}), health_host, health_port)
    return asyncio.run(worker.run())


class Worker:
    """One worker process's lifecycle (see the module docstring)."""

    def __init__(self, config: NexflowConfig, health_host: str, health_port: int | None) -> None:
        self._config = config
        self._health = (health_host, health_port)
        self._stop = asyncio.Event()
        self._running = False

    @property
    def executor_id(self) -> str:
        return worker_id(self._config)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        from nexflow.flow_runtime import build_flow_runtime
        from nexflow.flows.errors import FlowError
        from nexflow.skills.remote import serve_skills, skill_queue, stop_serving
        from nexflow.storage.base import StorageError

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        runtime = build_flow_runtime(self._config)
        server: asyncio.Server | None = None
        sweeper: asyncio.Task[None] | None = None
        code = 0
        try:
            await runtime.start()
        except StorageError as exc:
            log.error("worker_failed", error=str(exc), exc_info=exc)
            return 1
        try:
            engine = await runtime.flows.engine()
            # before launch: DBOS resumes this executor's interrupted skill runs there
            serve_skills(runtime.skills.run_tool, engine.executor_id)
            await engine.launch()  # DBOS recovers this executor's runs, then dequeues
            flows = self._config.flows
            await skill_queue(concurrency=flows.concurrency, poll_s=flows.queue_poll_s, owner=True)
            self._running = True
            host, port = self._health
            if port is not None:
                server = await asyncio.start_server(self._answer, host, port)
            if self._config.flows.sweep_s > 0:
                sweeper = asyncio.create_task(self._sweep(engine), name="nexflow-flows-sweep")
            log.info(
                "worker_started",
                executor=engine.executor_id,
                concurrency=self._config.flows.concurrency,
                health_port=port,
            )
            await self._stop.wait()
        except FlowError as exc:
            log.error("worker_failed", error=exc.message, exc_info=exc)
            code = 1
        finally:
            self._running = False
            if sweeper is not None:
                sweeper.cancel()
                await asyncio.gather(sweeper, return_exceptions=True)
            if server is not None:
                server.close()
                await server.wait_closed()
            await runtime.stop()
            stop_serving()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            log.info("worker_stopped", executor=self.executor_id)
        return code

    async def _sweep(self, engine: FlowEngine) -> None:
        """Every ``flows.sweep_s``: the runs of dead executors go back to the queue."""
        from nexflow.flows.executors import dead_executors

        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._config.flows.sweep_s)
                return
            dead = await dead_executors(engine.database_url, engine.executor_id)
            if not dead:
                continue
            try:
                found = await engine.recover(dead)
            except Exception:
                log.exception("flows_sweep_failed", executors=dead)
                continue
            log.info("flows_swept", executors=dead, workflows=found)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """``GET /health`` (the chart's probe); anything else 404. One request per
        connection, a head of at most 64 KiB, sent within 5 s."""
        try:
            async with asyncio.timeout(5):
                head = await reader.readuntil(b"\r\n\r\n")
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return
        parts = head.split(b" ", 2)
        if parts[:2] == [b"GET", b"/health"]:
            ok = self._running
            status = "200 OK" if ok else "503 Service Unavailable"
            body = {"status": "ok" if ok else "starting", "executor_id": self.executor_id}
        else:
            status, body = "404 Not Found", {"error": "not found"}
        data = json.dumps(body).encode()
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
            + data
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()


__all__ = ["Worker", "run_worker", "worker_id"]
