"""Stops that reach whatever sleeps, without a thread polling for them."""

from __future__ import annotations

import gc
import threading

import pytest

from broadcaster.scheduling.wakeup import StopEvent, relay_stop
from broadcaster.sms.dispatcher import AnyEvent


def test_a_stop_sets_the_relayed_events_at_once_and_starts_no_thread():
    outer, inner = StopEvent(), threading.Event()
    threads = threading.active_count()
    relay_stop(outer, inner)
    assert threading.active_count() == threads and not inner.is_set()
    outer.set()  # synchronously: by the time set() returns, the sleeper on inner is woken
    assert inner.is_set()


def test_a_stop_already_set_sets_the_event_relayed_afterwards():
    outer, inner = StopEvent(), threading.Event()
    outer.set()
    relay_stop(outer, inner)
    assert inner.is_set()


def test_any_of_several_stops_and_a_cleared_yield_is_ready_again():
    stop, yield_to = StopEvent(), StopEvent()
    first, second = threading.Event(), threading.Event()
    relay_stop(AnyEvent(stop, yield_to), first)
    yield_to.set()
    assert first.is_set() and not stop.is_set()
    yield_to.clear()  # the SMS thread clears it before the next dispatch
    relay_stop(AnyEvent(stop, yield_to), second)
    assert not second.is_set()
    stop.set()
    assert second.is_set()


def test_an_event_nobody_keeps_is_forgotten_and_a_plain_event_refused():
    outer = StopEvent()
    relay_stop(outer, threading.Event())
    gc.collect()
    assert len(outer._relayed) == 0
    with pytest.raises(TypeError):
        relay_stop(threading.Event(), threading.Event())
