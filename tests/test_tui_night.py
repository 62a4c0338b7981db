"""The auto-sleep policy with a fake clock: the night window, idle time, holds, the morning."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from dreamchat.config import Config
from dreamchat.tui.night import NightPolicy

from tui_fakes import fake_clock, later


def _policy(start="01:00", end="06:00", idle=20, on_morning="ask", now=datetime(2026, 11, 25, 0, 30)):
    clock = fake_clock(now)
    settings = Config().sleep
    settings = type(settings)(night_start=start, night_end=end, idle_minutes=idle, on_morning=on_morning)
    return NightPolicy.from_settings(settings, clock), clock


def test_defaults_come_from_config():
    policy = NightPolicy.from_settings(Config().sleep)
    assert (policy.night_start, policy.night_end) == (time(1), time(6))
    assert policy.idle == timedelta(minutes=20)


def test_sleeps_only_in_the_window_after_idle_with_unslept_messages():
    policy, clock = _policy()
    assert not policy.night_sleep_due(has_unslept=True, busy=False)  # 00:30, outside the window
    later(clock, minutes=45)  # 01:15, idle 45 min
    assert policy.night_sleep_due(has_unslept=True, busy=False)
    assert not policy.night_sleep_due(has_unslept=False, busy=False)  # nothing to sleep on
    assert not policy.night_sleep_due(has_unslept=True, busy=True)  # a reply is streaming
    policy.touch()  # a keystroke
    assert not policy.night_sleep_due(has_unslept=True, busy=False)
    later(clock, minutes=19)
    assert not policy.night_sleep_due(has_unslept=True, busy=False)
    later(clock, minutes=1)
    assert policy.night_sleep_due(has_unslept=True, busy=False)
    later(clock, hours=5)  # 06:35: the window has closed
    assert not policy.night_sleep_due(has_unslept=True, busy=False)


def test_a_cancelled_night_sleep_waits_for_the_user():
    policy, clock = _policy(now=datetime(2026, 11, 25, 2, 0))
    later(clock, minutes=30)
    policy.hold()
    assert not policy.night_sleep_due(has_unslept=True, busy=False)
    policy.touch()
    later(clock, minutes=20)
    assert policy.night_sleep_due(has_unslept=True, busy=False)


def test_window_across_midnight_and_empty_window():
    policy, _ = _policy(start="23:00", end="05:00")
    assert policy.in_night(datetime(2026, 11, 25, 23, 30))
    assert policy.in_night(datetime(2026, 11, 26, 4, 59))
    assert not policy.in_night(datetime(2026, 11, 26, 5, 0))
    assert not policy.in_night(datetime(2026, 11, 25, 22, 59))
    off, _ = _policy(start="03:00", end="03:00")
    assert not off.in_night(datetime(2026, 11, 25, 3, 0))


def test_morning_action():
    policy, clock = _policy(now=datetime(2026, 11, 25, 8, 0))
    yesterday = datetime(2026, 11, 24, 22, 0).astimezone()  # aware, as from the journal
    assert policy.morning_action(yesterday) == "ask"
    assert policy.morning_action(yesterday.astimezone(timezone.utc).isoformat()) == "ask"  # ISO text
    assert policy.morning_action(datetime(2026, 11, 25, 7, 0)) is None  # today's: nothing to offer
    assert policy.morning_action(None) is None
    auto, _ = _policy(on_morning="auto", now=datetime(2026, 11, 25, 8, 0))
    assert auto.morning_action(yesterday) == "auto"
    never, _ = _policy(on_morning="never", now=datetime(2026, 11, 25, 8, 0))
    assert never.morning_action(yesterday) is None
