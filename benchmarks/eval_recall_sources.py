"""Does "from memory: ..." under a reply point the user at what they said?

    .venv/bin/python benchmarks/eval_recall_sources.py --seeds 5,7 --episodes 24 --natural 44

Under a reply, the app shows the words the memory supplied and the latest slept message that holds
them (`dreamchat/recall.py`). This measures that line on held-out probes (one night, N passes,
greedy, the app's reply hook), three kinds of reply:

- recalled: the reply holds the answer. Counted: a line's source message holds the answer (the
  user sees where the fact came from);
- missed, naming another value the user stated (a mix-up: "Your car is Royal Feather School."):
  a line's source holds that value, a message about something else (the user can see the mix-up);
- untold: asked about a kind of fact the episode never stated (`eval_untold.py`'s questions), the
  reply names one of its stated values: a line's source holds that value.

- general: a general-knowledge question (`general_chat`'s held-out list, `--general` per synthetic
  episode) with the episode's night in memory; a line there is the memory intruding on an ordinary
  answer ("It's Seat Ibiza." to a question about dinner manners), shown for what it is.

And how often the line shows anything at all on each kind. The journal's search is played by a
matcher with its semantics (every word of the phrase, case-insensitive, anywhere in the message),
over the slept days' messages.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


class Match:
    """A slept message as the journal's search returns it (the fields `recollections` reads)."""

    def __init__(self, index: int, role: str, text: str):
        from datetime import datetime, timedelta, timezone

        self.id, self.role, self.text, self.sleep_id = index, role, text, 1
        self.created = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=index)
        self.snippet = text


def searcher(days):
    """A stand-in for `Journal.search` over the messages of `days`."""
    messages = [Match(i, m["role"], m["text"]) for i, m in enumerate(m for day in days for m in day)]
    words = [set(re.findall(r"\w+", m.text.lower())) for m in messages]

    def search(phrase: str):
        wanted = set(re.findall(r"\w+", phrase.lower()))
        return [m for m, have in zip(messages, words) if wanted and wanted <= have]
    return search


def main() -> int:
    import held_out

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--natural", type=int, default=0, help="the first N natural conversations")
    parser.add_argument("--untold", type=int, default=3, help="untold questions per synthetic episode")
    parser.add_argument("--general", type=int, default=1,
                        help="general-knowledge questions per synthetic episode")
    held_out.add_arguments(parser, json_help="write every reply and its lines here")
    args = parser.parse_args()

    from eval_untold import names_a_stated_value, untold_questions

    from dreamchat.models import wake
    from dreamchat.models.episodes import Probe, make_episodes, natural_conversations
    from dreamchat.models.evaluate import normalise, recalled
    from dreamchat.models.general_chat import GENERAL_CHAT
    from dreamchat.recall import recalled_phrases, recollections

    hooks = []
    init = wake.ReplyHook.__init__

    def keep(self, *a, **kw):
        init(self, *a, **kw)
        hooks.append(self)
    wake.ReplyHook.__init__ = keep

    _, bb, bench = held_out.open_benchmark(args)

    general = [q for q, _ in GENERAL_CHAT["test"]]
    scenarios = []
    for seed in (int(s) for s in args.seeds.split(",") if s.strip()):
        episodes = make_episodes(args.episodes, split="test", seed=seed)
        for i, ep in enumerate(episodes):
            first = len(scenarios) * args.general
            questions = [general[(first + k) % len(general)] for k in range(args.general)]
            scenarios.append(("synthetic", ep, untold_questions(episodes, i, args.untold), questions))
    scenarios += [("natural", ep, [], []) for ep in natural_conversations()[:args.natural]]

    tally = collections.Counter()
    records = []
    for source, ep, untold, questions in scenarios:
        stated = [p.answer for p in ep.probes]
        for day in sorted({p.day for p in ep.probes}):
            state = bench.sleep_through(ep.days[:day], args.passes)
            search = searcher(ep.days[:day])
            asked = [(p, "told") for p in ep.probes if p.day == day]
            first = day == min(p.day for p in ep.probes)
            asked += [(p, "untold") for p in untold] if first else []
            asked += [(Probe(day, q, "", "", "general", False), "general") for q in questions] if first else []
            for probe, told in asked:
                hooks.clear()
                reply = bench.ask(ep.days[day], probe.question, {"m": state})["m"][0]
                hook = hooks[-1]
                lines = recollections(recalled_phrases([bb.token_bytes(t) for t in hook.reply], hook.decided),
                                      search)
                shown = [(r.text, r.source_snippet) for r in lines]
                if told == "general":
                    value, kind = "", "general question"
                elif told == "told":
                    kind = "recalled" if recalled(probe.answer, reply) else "missed"
                    value = probe.answer if kind == "recalled" else names_a_stated_value(reply, stated)
                    if kind == "missed":
                        kind = "mix-up" if value else "missed, no stated value"
                else:
                    value = names_a_stated_value(reply, stated)
                    kind = "untold, names a stated value" if value else "untold, other"
                # the user sees the message that said the value (the line's words may be only
                # part of it: "Tuesday" of "Tuesday the 7th", the rest being the backbone's)
                pointed = bool(value) and any(snippet is not None and normalise(value) in normalise(snippet)
                                              for _, snippet in shown)
                tally[(source, kind, "n")] += 1
                tally[(source, kind, "shown")] += bool(shown)
                tally[(source, kind, "pointed")] += pointed
                records.append({"source": source, "kind": kind, "question": probe.question, "answer": probe.answer,
                                "reply": reply, "value": value, "lines": shown, "pointed": pointed})
        print(dict(tally), file=sys.stderr, flush=True)

    print("kind of reply                         source      replies  a line shown  a source holds the value")
    for (src, kind, what), n in sorted(tally.items()):
        if what != "n":
            continue
        pointed = "" if kind in ("untold, other", "missed, no stated value", "general question") else f"{tally[(src, kind, 'pointed')]:>5}"
        print(f"{kind:<38}{src:<12}{n:>7}{tally[(src, kind, 'shown')]:>14}{pointed:>27}")
    bb.close()
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
