"""First replies of the app: how many run away (to max_tokens), how many stop as loops, how many
drift out of English, with the reply loop stop off and on, side by side on the same draws.

    .venv/bin/python benchmarks/eval_runaways.py                      # 16 messages x 4 seeds, T = 0.7
    .venv/bin/python benchmarks/eval_runaways.py --seeds 8 --temperature 0.3 --json out.json

Each message is sent as the first of a fresh day (an empty memory), through the assistant's reply
path with a fixed seed per draw and then taken back, so "off" and "on" draw the same tokens until
the loop stop fires.
The 135M default model drifts into another language after a foreign name or word, and some of those
replies loop until max_tokens. "Not English" is a heuristic: fewer than a fifth of the words are
common English words.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MESSAGES = (
    "Hi! My sister's name is Marguerite and she lives in Lisbon.",
    "I just moved to Porto for a new job as a nurse.",
    "My dog Biscuit loves the beach.",
    "Tell me about your day.",
    "What should I cook tonight? I have rice, eggs and spinach.",
    "I'm feeling a bit stressed about my exam on Friday.",
    "Can you recommend a good book?",
    "My favourite band is Radiohead.",
    "How do I make my mornings less chaotic?",
    "We're planning a trip to Kyoto in April with my husband Kenji.",
    "Good morning!",
    "My daughter Amélie turned six yesterday.",
    "What's a good way to learn Spanish?",
    "I work at a bakery called Pan de Oro in Madrid.",
    "I can't sleep. Any tips?",
    "Explain what a black hole is in simple words.",
    # asked for repetition: a loop stop must leave these alone
    "Write a song about the sea with a chorus that repeats after every verse.",
    "List twenty animals, one per line.",
    "Write a poem in which every stanza ends with the line 'and the river runs'.",
    "Write the lyrics of a children's counting song from one to ten.",
)

ENGLISH = frozenset("""the a an and or but of to in on at for with from by about as is are was were be been
being i you he she it we they me him her us them my your his its our their this that these those what
which who how why when where there here not no yes so if then than do does did have has had can could
will would should may might must just very really too also all any some more most much many one two new
good great like love know think get got go going make made see say said time day well up out off into
over after before because while sounds hope help glad happy sure let it's i'm you're that's i'd i'll
don't can't nice fun enjoy wonderful amazing exciting""".split())


def english(text: str) -> bool:
    words = re.findall(r"[a-zA-Z']+", text.lower())
    return len(words) < 3 or sum(w in ENGLISH for w in words) / len(words) >= 0.2


def draw(assistant, text: str, settings) -> dict:
    from dreamchat.events import ReplyDone
    from dreamchat.models.sampler import Sampler

    started = time.perf_counter()
    done = next(e for e in assistant._reply(text, Sampler.from_settings(settings)) if isinstance(e, ReplyDone))
    seconds = time.perf_counter() - started
    assistant.take_back()  # every draw is the first message of the day
    return dict(tokens=done.tokens, finish=done.finish_reason, english=english(done.text), seconds=seconds,
                text=done.text)


def main() -> None:
    from dreamchat.assistant import Assistant

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=4, help="draws per message (seeds 0..N-1)")
    parser.add_argument("--temperature", type=float, default=None, help="default: the app's")
    parser.add_argument("--json", type=Path, help="write every reply here")
    args = parser.parse_args()

    assistant = Assistant.open(tempfile.mkdtemp(prefix="dreamchat-runaways-"))
    base = assistant.config.sampling
    if args.temperature is not None:
        base = replace(base, temperature=args.temperature)
    rows = []
    try:
        for text in MESSAGES:
            for seed in range(args.seeds):
                for stop_loops in (False, True):
                    assistant.config = replace(assistant.config, sampling=replace(base, stop_loops=stop_loops))
                    rows.append(dict(message=text, seed=seed, stop_loops=stop_loops,
                                     **draw(assistant, text, replace(base, seed=seed))))
    finally:
        assistant.close()

    print(f"{len(MESSAGES)} messages x {args.seeds} seeds, temperature {base.temperature}, "
          f"max_tokens {base.max_tokens}")
    print(f"{'loop stop':<10} {'to max_tokens':>14} {'stopped as loops':>17} {'not English':>12} "
          f"{'tokens':>8} {'seconds':>8}")
    for stop_loops in (False, True):
        mine = [r for r in rows if r["stop_loops"] == stop_loops]
        print(f"{'on' if stop_loops else 'off':<10} {sum(r['finish'] == 'length' for r in mine):>14} "
              f"{sum(r['finish'] == 'loop' for r in mine):>17} {sum(not r['english'] for r in mine):>12} "
              f"{sum(r['tokens'] for r in mine):>8} {sum(r['seconds'] for r in mine):>8.1f}")
    pairs = {(r["message"], r["seed"], r["stop_loops"]): r for r in rows}
    stopped_english = [k for k, r in pairs.items() if r["finish"] == "loop" and r["english"]]
    print(f"replies stopped as loops that read as English (to check by eye): {len(stopped_english)}")
    for message, seed, _ in stopped_english:
        print(f"  seed {seed}, {message!r}: {pairs[(message, seed, True)]['text'][-160:]!r}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
