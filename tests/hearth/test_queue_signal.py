"""The queue signal between processes sharing a SQLite database: rung by whoever queues, seen once."""

from __future__ import annotations

from hearth.taskmanager.queue_signal import QueueSignal


def test_a_ring_is_seen_once_by_each_watcher(tmp_path):
    url = f"sqlite:///{tmp_path / 'hearth.sqlite'}"
    api_side, watcher, other_watcher = (QueueSignal.for_database(url) for _ in range(3))
    assert api_side.path == tmp_path / "hearth.sqlite.queued"
    assert not watcher.rang()
    api_side.ring()
    assert watcher.rang() and not watcher.rang()  # seen, then quiet until the next ring
    assert other_watcher.rang()  # every watcher sees it
    api_side.ring()
    assert watcher.rang()


def test_only_sqlite_files_have_a_signal():
    assert QueueSignal.for_database("postgresql://hearth@127.0.0.1/hearth") is None
    assert QueueSignal.for_database("sqlite://") is None
    assert QueueSignal.for_database("sqlite:///:memory:") is None


def test_rings_faster_than_file_times_are_each_seen(tmp_path):
    url = f"sqlite:///{tmp_path / 'hearth.sqlite'}"
    api_side, watcher = QueueSignal.for_database(url), QueueSignal.for_database(url)
    for _ in range(5000):  # more than the file holds: it starts over, and each ring is still seen
        api_side.ring()
        assert watcher.rang()
