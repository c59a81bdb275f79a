"""A pull collects garbage less often, and the interpreter's settings come back when the last pull ends;
a loaded snapshot is left out of collections until the next load or pull."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

from bridge.gc_pacing import YOUNG_THRESHOLD, fewer_collections, hold_loaded, release_loaded
from bridge.store import Store
from bridge.store.snapshot import load_snapshot


def test_settings_are_restored_after_nested_and_concurrent_holders() -> None:
    release_loaded()  # a snapshot an earlier test loaded in this process
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    inside = threading.Event()
    release = threading.Event()

    def other_pull() -> None:
        with fewer_collections():
            inside.set()
            release.wait(10)

    with fewer_collections():
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_freeze_count() > frozen, "what existed before the pull is left out of collections"
        worker = threading.Thread(target=other_pull)
        worker.start()
        assert inside.wait(10)
    # the first holder ended while the other still pulls: nothing is restored yet
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    release.set()
    worker.join(10)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen


def test_cycles_made_during_a_pull_are_still_collected() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    with fewer_collections():
        for _ in range(3 * YOUNG_THRESHOLD):
            Node()
        assert sum(1 for o in gc.get_objects() if isinstance(o, Node)) < 2 * YOUNG_THRESHOLD


def test_a_loaded_snapshot_is_left_out_of_collections_until_the_next_load_or_pull(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'bridge.db'}")
    try:
        store.upgrade()
        snapshot = load_snapshot(store)
        assert gc.get_freeze_count() > 0
        assert not any(o is snapshot.tasks for o in gc.get_objects()), "no collection walks it"
        with fewer_collections():
            pass
        assert gc.get_freeze_count() == 0, "a pull's end returns it to the collector"
        hold_loaded()
        release_loaded()
        assert gc.get_freeze_count() == 0, "so does the next load"
    finally:
        store.close()


def test_a_release_that_collects_does_so_only_after_a_load() -> None:
    release_loaded()  # whatever an earlier test left held
    collections = []

    def heard(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            collections.append(info)

    gc.callbacks.append(heard)
    try:
        release_loaded(collect=True)
        assert collections == [], "nothing was held: a quiet cycle pays for no collection"
        hold_loaded()
        assert gc.get_freeze_count() > 0
        release_loaded(collect=True)
        assert gc.get_freeze_count() == 0
        assert len(collections) == 1, "the held load's garbage is collected as the cycle ends"
        release_loaded(collect=True)
        assert len(collections) == 1
    finally:
        gc.callbacks.remove(heard)
