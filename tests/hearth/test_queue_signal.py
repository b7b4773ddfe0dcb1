"""The queue signal a task manager's watcher sleeps on: rung by whoever queues, on SQLite through Unix
datagram sockets beside the database, on PostgreSQL through LISTEN/NOTIFY."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import psycopg
import pytest

from hearth.taskmanager.queue_signal import CHANNEL, Listener, NotifyListener, QueueSignal, libpq_url

_opened: list[QueueSignal] = []


@pytest.fixture(autouse=True)
def _close_signals() -> Iterator[None]:
    """Every signal a test opened is closed after it (their sending sockets)."""
    yield
    while _opened:
        _opened.pop().close()


def _signal(tmp_path) -> QueueSignal:
    signal = QueueSignal.for_database(f"sqlite:///{tmp_path / 'hearth.sqlite'}")
    assert signal is not None
    _opened.append(signal)
    return signal


def test_a_ring_wakes_every_listener_once(tmp_path):
    api_side = _signal(tmp_path)
    assert api_side.directory == tmp_path / "hearth.sqlite.wake"
    first, second = _signal(tmp_path).listen(), _signal(tmp_path).listen()
    try:
        assert first.wait(0) and second.wait(0)  # nothing rang: the time ran out, the owner looks anyway
        api_side.ring()
        api_side.ring()
        assert first.wait(5) and second.wait(5)  # both woken; the two rings are drained as one
        started = time.monotonic()
        assert first.wait(0.2)  # quiet again until the next ring: a timeout
        assert time.monotonic() - started >= 0.15
    finally:
        first.close()
        second.close()
    assert list(api_side.directory.iterdir()) == []  # a closed listener takes its socket away


def test_an_interrupt_ends_the_wait_without_asking_for_a_look(tmp_path):
    listener = _signal(tmp_path).listen()
    try:
        listener.interrupt()
        assert listener.wait(5) is False
    finally:
        listener.close()
    listener.interrupt()  # after close: harmless
    plain = Listener()
    plain.interrupt()
    assert plain.wait(5) is False
    plain.close()


def test_ringing_with_nobody_listening_is_harmless(tmp_path):
    api_side = _signal(tmp_path)
    api_side.ring()  # no directory yet
    api_side.directory.mkdir()
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(api_side.directory / "1-deadbeef"))  # left behind by a process that was killed
    dead.close()
    api_side.ring()
    assert list(api_side.directory.iterdir()) == []  # the refused socket was cleared away


def test_skip_own_leaves_this_process_listeners_alone(tmp_path):
    api_side = _signal(tmp_path)
    listener = api_side.listen()
    try:
        api_side.ring(skip_own=True)
        assert listener.wait(0.1)  # a timeout, not a ring: the wait lasted
        api_side.ring()
        started = time.monotonic()
        assert listener.wait(5) and time.monotonic() - started < 4
    finally:
        listener.close()


def test_a_database_path_too_long_for_a_socket_name_listens_under_the_temp_dir(tmp_path):
    deep = tmp_path / ("d" * 90)
    deep.mkdir()
    signal = _signal(deep)
    assert not str(signal.directory).startswith(str(deep))
    listener = signal.listen()
    try:
        signal.ring()
        assert listener.wait(5)
    finally:
        listener.close()
        signal.directory.rmdir()


def test_only_sqlite_files_have_a_signal():
    assert QueueSignal.for_database("postgresql://hearth@127.0.0.1/hearth") is None
    assert QueueSignal.for_database("sqlite://") is None
    assert QueueSignal.for_database("sqlite:///:memory:") is None


@pytest.mark.postgres
def test_notify_wakes_a_postgresql_listener_except_its_own_rings(postgres_database):
    url = libpq_url(postgres_database)
    listener = NotifyListener(url, ignore_payload="me")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"NOTIFY {CHANNEL}, 'me'")
            assert listener.wait(5) is False  # this process's own ring: its workers were woken directly
            conn.execute(f"NOTIFY {CHANNEL}, 'someone else'")
            assert listener.wait(5) is True
    finally:
        listener.close()
