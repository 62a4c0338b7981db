"""What `forget` costs on a journal of many slept days, beside what sleeping those days cost.

    python benchmarks/bench_forget.py [--model PATH] [--days 14] [--day-tokens 1500] [--threads 2]

Builds a home of `--days` days of chat (written straight to the journal, then slept as the app
sleeps them, N = 2), keeping the default 7 snapshots. Then forgets, in one run:
  - a message of the last day: the memory sleeps again on that day only, from the snapshot before it;
  - a message of the first day: no snapshot that old is kept, so it sleeps again on every day.
Prints seconds for each beside the seconds the original sleeps of those days took (the ratio should
be near 1: forgetting is sleeping again, nothing more), and the planning time.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

THINGS = ["the market", "the library", "my sister's flat", "the harbour", "the bakery", "the office",
          "the park", "the station", "the old bridge", "the museum"]
DOINGS = ["walked to", "cycled past", "had lunch near", "met a friend at", "waited for an hour at",
          "took photos of", "read a book at", "got lost near"]


def day_exchanges(day: int, tokens: int) -> list[tuple[str, str]]:
    """Plain chat of about `tokens` tokens (a turn is ~25), with one marker word per day."""
    exchanges = []
    for i in range(max(1, tokens // 50)):
        thing, doing = THINGS[(day + i) % len(THINGS)], DOINGS[(day * 3 + i) % len(DOINGS)]
        user = f"Yesterday I {doing} {thing} and it was {'busy' if i % 2 else 'quiet'}."
        if i == 0:
            user = f"My code word for day {day} is Marker{day:03d}x. " + user
        exchanges.append((user, f"That sounds like a {'lively' if i % 2 else 'calm'} day at {thing}."))
    return exchanges


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a GGUF (default: the default model)")
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--day-tokens", type=int, default=1500, help="roughly: a day comes out at ~70 %%")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from dreamchat.assistant import Assistant
    from dreamchat.config import Config

    base = Config()
    config = dataclasses.replace(base, model=dataclasses.replace(base.model, threads=args.threads),
                                 sleep=dataclasses.replace(base.sleep, passes=2))
    with tempfile.TemporaryDirectory() as home, \
            Assistant.open(home=home, model=args.model, config=config) as assistant:
        sleep_s = []
        for day in range(args.days):
            for user, reply in day_exchanges(day, args.day_tokens):
                assistant.journal.append_exchange(user, reply, 1, 1)
            report = assistant.sleep()
            sleep_s.append(report.duration_s)
        tokens = sum(s.tokens for s in assistant.journal.sleeps())
        print(f"{args.days} days slept, {tokens:,} tokens ({tokens // args.days:,} a day), N = 2, "
              f"{args.threads} threads: {sum(sleep_s):.1f} s in all, {sum(sleep_s) / args.days:.2f} s a day")

        for label, day, slept in (("the last day", args.days - 1, sleep_s[-1:]),
                                  ("the first day", 0, sleep_s)):
            started = time.perf_counter()
            plan = assistant.plan_forget(f"Marker{day:03d}x")
            planned = time.perf_counter() - started
            report = assistant.forget(plan)
            print(f"forget a message of {label}: plan {planned * 1000:.0f} ms, forget {report.duration_s:.1f} s "
                  f"({report.replay_days} day(s) slept again, {report.tokens:,} tokens; those days first slept "
                  f"in {sum(slept):.1f} s: ratio {report.duration_s / sum(slept):.2f}); "
                  f"{len(report.removed_snapshots)} snapshot(s) deleted")


if __name__ == "__main__":
    main()
