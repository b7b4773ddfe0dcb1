"""Run upstream Heat (API + convergence engine) in ONE process; executed by the Heat virtualenv's python.

    <heat venv>/bin/python launcher.py --config-file heat.conf (--fd N | --port N)

The `fake://` message transport only reaches within one process, so the engine service and the paste API
app share this one. Imports only the standard library and Heat (this file runs outside Hearth's venv).
Prints `READY <port>` on stdout once requests are served; SIGTERM/SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sqlite3
import sys
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # Heat logs its own requests
        pass


def _sqlite_waits_instead_of_failing() -> None:
    """Concurrent convergence workers on one SQLite file: take the write lock up front and wait for it.

    oslo.db already opens each SQLite transaction with its own `BEGIN`; it becomes `BEGIN IMMEDIATE`
    here (no deadlock between two readers upgrading to writers), and every connection waits up to 60 s
    for the lock instead of failing with "database is locked".
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _on_connect(dbapi_conn: object, record: object) -> None:
        if isinstance(dbapi_conn, sqlite3.Connection):
            dbapi_conn.execute("PRAGMA busy_timeout=60000")

    @event.listens_for(Engine, "before_cursor_execute", retval=True)
    def _immediate(conn: object, cursor: object, statement: str, parameters: object, context: object,
                   executemany: bool) -> tuple[str, object]:
        if statement == "BEGIN" and conn.dialect.name == "sqlite":  # type: ignore[attr-defined]
            statement = "BEGIN IMMEDIATE"
        return statement, parameters


def _listening_socket(args: argparse.Namespace) -> socket.socket:
    if args.fd is not None:
        return socket.socket(fileno=args.fd)  # bound and listening in the parent, so its port is known there
    sock = socket.create_server(("127.0.0.1", args.port))
    return sock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--fd", type=int)
    parser.add_argument("--port", type=int, default=8004)
    args = parser.parse_args()

    from oslo_service import backend

    backend.init_backend(backend.BackendType.THREADING)  # before any Heat import (27.x has no eventlet)
    from heat.common import config, messaging
    from oslo_config import cfg
    from oslo_log import log as logging

    logging.register_options(cfg.CONF)
    cfg.CONF(args=[], project="heat", prog="heat-api", default_config_files=[args.config_file])
    logging.setup(cfg.CONF, "heat")
    config.set_config_defaults()
    messaging.setup()
    _sqlite_waits_instead_of_failing()

    from heat.engine import service as engine_service
    from heat.rpc import api as rpc_api

    engine = engine_service.EngineService(cfg.CONF.host, rpc_api.ENGINE_TOPIC)
    engine.start()
    app = config.load_paste_app("heat-api")

    sock = _listening_socket(args)
    server = _Server(sock.getsockname()[:2], _QuietHandler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    server.server_name, server.server_port = "127.0.0.1", sock.getsockname()[1]
    server.setup_environ()
    server.set_app(app)

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"READY {server.server_port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        engine.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
