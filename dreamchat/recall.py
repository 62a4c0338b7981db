"""Which words of a reply came from memory, and where the user said them.

The memory answers by pushing tokens it holds into the reply (`ReplyHook.decided` marks the tokens
whose push chose them). A 135M backbone with a fixed-size memory mixes facts up: asked about their
car, a user may hear the school they named the same day. So the front ends show, under such a
reply, the words the memory supplied and the latest slept message that holds them ("“Royal Feather
School”: you, 2026-11-27: “mine is [Royal Feather School] when it comes to my kids' school”"). The
user can then tell a recollection from a mix-up, which the memory itself cannot (model card,
twenty-fourth session). Words found in no slept message are said to be so: most often a value the
memory garbled.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from dreamchat.events import Recollection
from dreamchat.storage.journal import SearchHit

Search = Callable[[str], list[SearchHit]]  # the journal's full-text search (`Journal.search_slept`)

# Words that carry no fact: a span of the memory's that holds only these is its reply wording
# ("Your ... is called"), not a recollection.
STOPWORDS = frozenset("""a an the and or but so if of to in on at by for with from as into onto about over
after before than then that this these those there here what which who whom whose when where why how
i me my mine you your yours he him his she her hers it its we us our they them their is are was were be
been being am do does did done have has had having will would shall should can could may might must
not no yes just also too very really still now soon today tomorrow yesterday lol haha oh ok okay well
all any some one two new old up out off again all's it's that's i'm i've i'd you're we're they're
s t ve re ll d m""".split())

WORD = re.compile(r"\w[\w'’-]*")
MAX_RECOLLECTIONS = 3  # a reply that recalls more is rare; more lines would bury the reply
MAX_RUN = 8  # longest run of words looked up as one (a phrase is cut into runs, longest first)


def recalled_phrases(pieces: Sequence[bytes], decided: Sequence[bool]) -> list[str]:
    """The phrases of a reply that hold a token the memory chose, in reply order, each at most once.

    pieces: the bytes of each reply token; decided: per token, whether the memory's push chose it.
    A phrase is a run of whole words (a value's later pieces are usually the backbone's own
    completion of the memory's first piece) joined by single spaces; a stop word between two such
    words stays in ("Wednesday the 14th"), stop words at its ends go, and phrases of stop words
    only are not recollections.
    """
    if len(pieces) != len(decided):
        raise ValueError(f"{len(pieces)} pieces but {len(decided)} decided flags")
    text, marked = _marked_characters(pieces, decided)
    phrases: list[list[str]] = []
    open_phrase = False   # the last word belongs to phrases[-1]
    previous_end = None
    for m in WORD.finditer(text):
        word, joined = m.group(), open_phrase and text[previous_end:m.start()] == " "
        if any(marked[m.start():m.end()]):
            if joined:
                phrases[-1].append(word)
            else:
                phrases.append([word])
            open_phrase = True
        else:  # an unmarked stop word may bridge two marked words; anything else ends the phrase
            open_phrase = joined and word.lower() in STOPWORDS
            if open_phrase:
                phrases[-1].append(word)
        previous_end = m.end()
    out: list[str] = []
    for phrase in phrases:
        while phrase and phrase[0].lower() in STOPWORDS:
            phrase.pop(0)
        while phrase and phrase[-1].lower() in STOPWORDS:
            phrase.pop()
        joined = " ".join(phrase)
        if joined and joined not in out:
            out.append(joined)
    return out


def _marked_characters(pieces: Sequence[bytes], decided: Sequence[bool]) -> tuple[str, list[bool]]:
    """The reply's text and, per character, whether a token the memory chose holds it (a character
    split across tokens counts for each of them)."""
    data = b"".join(pieces)
    text = data.decode("utf-8", errors="replace")
    marked = [False] * len(text)
    offset = 0
    for piece, chosen in zip(pieces, decided):
        if chosen and piece:
            # characters before the piece's first and after its last byte (whole or partial)
            lo = len(data[:offset].decode("utf-8", errors="ignore"))
            hi = len(data[:offset + len(piece)].decode("utf-8", errors="replace"))
            for i in range(lo, min(hi, len(text))):
                marked[i] = True
        offset += len(piece)
    return text, marked


def recollections(phrases: Sequence[str], search: Search) -> tuple[Recollection, ...]:
    """Each phrase with the latest slept message that holds it word for word (the user's own before
    the assistant's), at most `MAX_RECOLLECTIONS` lines. A phrase no message holds whole is split
    into the longest runs of its words that one message holds, since the memory may join words of
    two facts ("pelmeni paragliding"); words no message holds stay together, without a source.
    `search` is the journal's full-text search."""
    out: list[Recollection] = []
    for phrase in phrases:
        for text, hit in _said_parts(phrase.split(" "), search):
            if len(out) == MAX_RECOLLECTIONS:
                return tuple(out)
            if any(r.text == text for r in out):
                continue
            out.append(Recollection(text=text) if hit is None else
                       Recollection(text=text, source_role=hit.role, source_time=hit.created,
                                    source_snippet=hit.snippet, source_id=hit.id))
    return tuple(out)


def _said_parts(words: list[str], search: Search) -> list[tuple[str, SearchHit | None]]:
    """`words` cut into runs that a slept message holds (longest first, from the left) and runs of
    words that none holds; runs of stop words only are dropped."""
    parts: list[tuple[str, SearchHit | None]] = []
    unheld: list[str] = []
    i = 0
    while i < len(words):
        for j in range(min(len(words), i + MAX_RUN), i, -1):
            hit = _latest_source(" ".join(words[i:j]), search)
            if hit is not None:
                break
        else:
            unheld.append(words[i])
            i += 1
            continue
        if unheld:
            parts.append((" ".join(unheld), None))
            unheld = []
        parts.append((" ".join(words[i:j]), hit))
        i = j
    if unheld:
        parts.append((" ".join(unheld), None))
    return [(text, hit) for text, hit in parts if any(w.lower() not in STOPWORDS for w in text.split(" "))]


def _latest_source(phrase: str, search: Search) -> SearchHit | None:
    """The latest slept message that holds `phrase` word for word (punctuation and case aside), the
    user's own before the assistant's."""
    wanted = f" {_plain(phrase)} "
    slept = [hit for hit in search(phrase) if hit.sleep_id is not None and wanted in f" {_plain(hit.text)} "]
    return max(slept, key=lambda hit: (hit.role == "user", hit.created, hit.id)) if slept else None


def _plain(text: str) -> str:
    """Words as the full-text index splits them ("Pickle's" is "pickle s"), lower case."""
    return " ".join(re.findall(r"\w+", text.lower()))
