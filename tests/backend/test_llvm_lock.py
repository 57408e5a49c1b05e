"""jit._LLVMLock: shared holds (part compiles) overlap; an exclusive request (MCJIT, symbol lookups)
is not starved by a stream of shared holds, and no nesting deadlocks."""

from __future__ import annotations

import threading

import pytest

from raster_mlir.backend.jit import _LLVMLock

TIMEOUT = 10.0


def _thread(fn) -> threading.Thread:
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    return t


def test_shared_holders_overlap():
    lock = _LLVMLock()
    inside = threading.Barrier(2, timeout=TIMEOUT)

    def part():
        with lock.shared():
            inside.wait()  # both threads hold it shared at once, or this times out

    threads = [_thread(part) for _ in range(2)]
    for t in threads:
        t.join(TIMEOUT)
    assert not inside.broken and not any(t.is_alive() for t in threads)


def test_an_exclusive_request_goes_before_later_shared_holds():
    lock = _LLVMLock()
    order: list[str] = []
    first_inside, release_first = threading.Event(), threading.Event()

    def first_part():
        with lock.shared():
            order.append("first part")
            first_inside.set()
            release_first.wait(TIMEOUT)

    def lookup():
        with lock:
            order.append("exclusive")

    def second_part():
        with lock.shared():
            order.append("second part")

    holder = _thread(first_part)
    assert first_inside.wait(TIMEOUT)
    exclusive = _thread(lookup)
    while not lock._exclusive_waiting:  # the exclusive request is queued
        threading.Event().wait(0.001)
    later = _thread(second_part)
    threading.Event().wait(0.05)
    assert order == ["first part"]  # the later shared hold waits behind the exclusive request
    release_first.set()
    for t in (holder, exclusive, later):
        t.join(TIMEOUT)
    assert order == ["first part", "exclusive", "second part"]


def test_nested_holds_do_not_deadlock_while_an_exclusive_request_waits():
    lock = _LLVMLock()
    outer_inside, go_on = threading.Event(), threading.Event()
    done: list[str] = []

    def nested_shared():
        with lock.shared():
            outer_inside.set()
            go_on.wait(TIMEOUT)
            with lock.shared():  # a thread holding it shared may nest, writer waiting or not
                done.append("nested")

    def exclusive_then_shared():
        with lock:
            with lock:  # re-entrant
                with lock.shared():  # the exclusive owner may hold it shared too
                    done.append("exclusive")

    holder = _thread(nested_shared)
    assert outer_inside.wait(TIMEOUT)
    writer = _thread(exclusive_then_shared)
    while not lock._exclusive_waiting:
        threading.Event().wait(0.001)
    go_on.set()
    for t in (holder, writer):
        t.join(TIMEOUT)
    assert done == ["nested", "exclusive"]
    assert not lock._shared and lock._owner is None


def test_a_shared_holder_asking_for_it_exclusively_is_refused_and_others_go_on():
    lock = _LLVMLock()
    others: list[str] = []
    with lock.shared():
        with pytest.raises(RuntimeError, match="holding it shared"):
            with lock:
                pass
        assert not lock._exclusive_waiting  # no request left queued to block the others

        def part():
            with lock.shared():
                others.append("shared")

        _thread(part).join(TIMEOUT)
        assert others == ["shared"]
    assert lock._owner is None and lock._depth == 0 and not lock._shared
