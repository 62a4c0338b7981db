"""When the app should sleep by itself: a plain object, so it can be tested with a fake clock.

Two rules, both from config.toml [sleep]:

- **Night-time auto-sleep.** Inside the night window (night_start..night_end, which may cross
  midnight) and after idle_minutes without a keystroke, if there are unslept messages, sleep.
  A sleep the user cancelled (or one that failed) is not retried until the user does something.
- **Good morning.** At start-up, unslept messages from an earlier calendar day are yesterday's
  conversation: offer to sleep on them first (on_morning = "ask"), do it ("auto"), or not ("never").

All times are naive local times; aware datetimes (from the journal) are converted to local time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

Clock = Callable[[], datetime]


def parse_hhmm(text: str) -> time:
    """'01:30' -> time(1, 30). The config module has already checked the format."""
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def local_naive(moment: datetime | str) -> datetime:
    """A datetime in local time without tzinfo, whatever it came as (the journal stores ISO-8601
    UTC text; aware datetimes are converted; naive ones are taken as local already)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone().replace(tzinfo=None) if moment.tzinfo else moment


@dataclass
class NightPolicy:
    night_start: time = time(1, 0)  # the window opens ...
    night_end: time = time(6, 0)  # ... and closes (end < start: the window crosses midnight)
    idle: timedelta = timedelta(minutes=20)  # no keystroke for this long before a night sleep
    on_morning: str = "ask"  # "ask" | "auto" | "never"
    clock: Clock = datetime.now  # injectable for tests
    last_activity: datetime = field(init=False)
    held: bool = field(init=False, default=False)  # a night sleep was cancelled: wait for activity

    def __post_init__(self) -> None:
        self.last_activity = self.clock()

    @classmethod
    def from_settings(cls, sleep_settings, clock: Clock | None = None) -> "NightPolicy":
        """Build from config.sleep (night_start, night_end, idle_minutes, on_morning)."""
        return cls(night_start=parse_hhmm(sleep_settings.night_start),
                   night_end=parse_hhmm(sleep_settings.night_end),
                   idle=timedelta(minutes=sleep_settings.idle_minutes),
                   on_morning=sleep_settings.on_morning,
                   clock=clock or datetime.now)

    def touch(self) -> None:
        """The user did something (a key, a click, a message): restart the idle timer."""
        self.last_activity = self.clock()
        self.held = False

    def hold(self) -> None:
        """Don't start another night sleep until the user does something (after a cancel/failure)."""
        self.held = True

    def in_night(self, moment: datetime | None = None) -> bool:
        now = (moment or self.clock()).time()
        start, end = self.night_start, self.night_end
        if start == end:
            return False  # an empty window turns night sleep off
        if start < end:
            return start <= now < end
        return now >= start or now < end  # the window crosses midnight, e.g. 23:00-05:00

    def idle_for(self) -> timedelta:
        return self.clock() - self.last_activity

    def night_sleep_due(self, *, has_unslept: bool, busy: bool) -> bool:
        """Whether to start a night sleep now."""
        return (has_unslept and not busy and not self.held and self.in_night()
                and self.idle_for() >= self.idle)

    def is_earlier_day(self, oldest_unslept: datetime | str | None) -> bool:
        """Whether the oldest unslept message is from a day before today (yesterday's conversation)."""
        if oldest_unslept is None:
            return False
        return local_naive(oldest_unslept).date() < self.clock().date()

    def morning_action(self, oldest_unslept: datetime | str | None) -> str | None:
        """At start-up: "ask", "auto" or None (nothing to do, or on_morning = "never")."""
        if self.on_morning == "never" or not self.is_earlier_day(oldest_unslept):
            return None
        return self.on_morning
