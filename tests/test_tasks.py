"""The synthetic tasks: layout contract, determinism, and answers checked by independent solvers."""

import random

import pytest

from dreamchat.models.tasks import PAD, Example, check_example, get_task, pack_windows, render
from dreamchat.models.tasks.arithmetic import Arithmetic
from dreamchat.models.tasks.depo import Depo
from dreamchat.models.tasks.rule110 import Rule110, rule110_rollout, rule110_step

TASKS = [Rule110(), Rule110(n_strings=3, n_bits=5, max_depth=2), Depo(),
         Depo(n_nodes=6, n_names=7, n_queries=3, edges_per_window=2, max_depth=4),
         Arithmetic(), Arithmetic(n_statements=3, n_vars=3, modulus=5, n_fillers=1, window=8)]


def windows(task, ex: Example) -> list[list[int]]:
    L = task.window
    return [list(ex.tokens[i:i + L]) for i in range(0, task.seq_len, L)]


@pytest.mark.parametrize("task", TASKS, ids=lambda t: f"{t.name}-{t.seq_len}")
def test_every_depth_fits_the_layout(task):
    rng = random.Random(0)
    for depth in task.depths:
        for _ in range(20):
            ex = task.example(rng, depth)
            check_example(task, ex)
            assert ex.depth == depth
            assert 0 < task.chance < 1


@pytest.mark.parametrize("task", TASKS, ids=lambda t: f"{t.name}-{t.seq_len}")
def test_same_seed_same_data_other_seed_other_data(task):
    depth = task.depths[-1]
    a = [task.example(random.Random(7), depth) for _ in range(3)]
    b = [task.example(random.Random(7), depth) for _ in range(3)]
    c = task.example(random.Random(8), depth)
    assert a == b
    assert c != a[0]


@pytest.mark.parametrize("task", TASKS, ids=lambda t: f"{t.name}-{t.seq_len}")
def test_answers_only_in_the_last_windows(task):
    """Consolidation windows (no answers) come first, prediction windows last: answers are asked
    after the context was evicted."""
    ex = task.example(random.Random(1), task.depths[-1])
    L = task.window
    has_answer = [any(ex.loss_mask[i:i + L]) for i in range(0, task.seq_len, L)]
    first = has_answer.index(True)
    assert first >= 1 and all(has_answer[first:])


@pytest.mark.parametrize("name", ["rule110", "depo", "arithmetic"])
def test_depth_out_of_range_is_rejected(name):
    task = get_task(name)
    with pytest.raises(ValueError, match="depth"):
        task.example(random.Random(0), max(task.depths) + 1)


def test_get_task_rejects_unknown_names_and_bad_configs():
    with pytest.raises(ValueError, match="unknown task"):
        get_task("sudoku")
    with pytest.raises(ValueError, match="must exceed max_depth"):
        get_task("depo", n_nodes=4, max_depth=4)
    assert get_task("rule110", n_bits=5).n_bits == 5


# --- Rule 110 ---------------------------------------------------------------------------------------


def test_rule110_truth_table():
    # Neighbourhoods 111 110 101 100 011 010 001 000 -> 0 1 1 0 1 1 1 0 (110 in binary).
    expected = {(1, 1, 1): 0, (1, 1, 0): 1, (1, 0, 1): 1, (1, 0, 0): 0,
                (0, 1, 1): 1, (0, 1, 0): 1, (0, 0, 1): 1, (0, 0, 0): 0}
    for (l, c, r), new in expected.items():
        # A ring of 5 cells l c r 0 0: cell 1 has neighbours (l, c, r).
        assert rule110_step([l, c, r, 0, 0])[1] == new


def test_rule110_ring_wraps_around():
    # The first cell's left neighbour is the last cell: 0 0 0 0 1 -> cell 0 sees (1, 0, 0) -> 0, and
    # cell 3 sees (0, 0, 1) -> 1, cell 4 sees (0, 1, 0) -> 1.
    assert rule110_step([0, 0, 0, 0, 1]) == [0, 0, 0, 1, 1]
    assert rule110_rollout([0, 0, 0, 0, 1], 0) == [0, 0, 0, 0, 1]
    assert rule110_rollout([0, 0, 0, 0, 1], 2) == rule110_step([0, 0, 0, 1, 1])


def test_rule110_episode_answers_match_an_independent_rollout():
    task = Rule110(n_strings=3, n_bits=7, max_depth=5)
    rng = random.Random(3)
    for depth in task.depths:
        ex = task.example(rng, depth)
        *string_windows, query = windows(task, ex)
        answers = {}
        for w in string_windows:
            name = task.vocab[w[0]]
            assert [task.vocab[t] for t in w[1:1 + depth]] == ["s"] * depth
            cells = [int(task.vocab[t]) for t in w[1 + depth:] if t != PAD]
            assert len(cells) == task.n_bits
            for _ in range(depth):  # an independent rollout, written out differently
                n = len(cells)
                cells = [int(f"{110:08b}"[7 - (4 * cells[i - 1] + 2 * cells[i] + cells[(i + 1) % n])])
                         for i in range(n)]
            answers[name] = cells[0]
        for i in range(0, 2 * task.n_strings, 2):
            assert int(task.vocab[query[i + 1]]) == answers[task.vocab[query[i]]]
        assert ex.loss_mask[-task.window:][:2 * task.n_strings] == (0, 1) * task.n_strings


# --- Depo -------------------------------------------------------------------------------------------


def test_depo_graph_is_one_cycle_and_answers_follow_k_hops():
    task = Depo(n_nodes=7, n_names=12, n_queries=3, edges_per_window=3, max_depth=6)
    rng = random.Random(5)
    for depth in task.depths:
        ex = task.example(rng, depth)
        ws = windows(task, ex)
        graph = [t for w in ws[:task.graph_windows] for t in w if t != PAD]
        succ = dict(zip(graph[0::2], graph[1::2]))
        assert len(succ) == task.n_nodes and set(succ.values()) == set(succ)  # a permutation
        node, seen = graph[0], set()
        while node not in seen:  # one cycle through every node
            seen.add(node)
            node = succ[node]
        assert len(seen) == task.n_nodes
        for w in ws[task.graph_windows:]:
            start, hops, answer = w[0], w[1:1 + depth], w[1 + depth]
            assert [task.vocab[t] for t in hops] == [">"] * depth
            node = start
            for _ in range(depth):
                node = succ[node]
            assert answer == node != start


def test_depo_edges_never_straddle_a_window():
    task = Depo(n_nodes=9, n_names=9, edges_per_window=4, max_depth=3)
    ex = task.example(random.Random(0), 2)
    for w in windows(task, ex)[:task.graph_windows]:
        assert sum(t != PAD for t in w) % 2 == 0


# --- arithmetic -------------------------------------------------------------------------------------


def parse_statements(task: Arithmetic, tokens: list[int]) -> dict[str, tuple]:
    words = [task.vocab[t] for t in tokens if t != PAD]
    defs, i = {}, 0
    while i < len(words):
        if i + 1 < len(words) and words[i].startswith("v") and words[i + 1] == "=":
            end = words.index(";", i)
            defs[words[i]] = tuple(words[i + 2:end])
            i = end + 1
        else:
            i += 1
    return defs


def solve(defs: dict[str, tuple], name: str, modulus: int) -> tuple[int, int]:
    """(value, operations needed) of `name`, by recursion over the parsed definitions."""
    rhs = defs[name]
    if len(rhs) == 1:
        return int(rhs[0]), 0
    value, ops = solve(defs, rhs[0], modulus)
    c = int(rhs[2])
    return (value + c if rhs[1] == "+" else value - c) % modulus, ops + 1


@pytest.mark.parametrize("task", [Arithmetic(), Arithmetic(n_statements=4, n_vars=5, modulus=7, window=10)])
def test_arithmetic_answers_and_depth_match_an_independent_solver(task):
    rng = random.Random(11)
    for depth in task.depths:
        for _ in range(10):
            ex = task.example(rng, depth)
            context = list(ex.tokens[:-task.window])
            assert task.vocab[context[0]] == "?"
            question = task.vocab[context[1]]
            defs = parse_statements(task, context)
            assert len(defs) == task.n_statements
            value, ops = solve(defs, question, task.modulus)
            assert ops == depth
            query = [task.vocab[t] for t in ex.tokens[-task.window:] if t != PAD]
            assert query == ["?", question, "=", str(value)]


def test_arithmetic_statements_are_shuffled():
    """The chain is not always written in dependency order (else it could be summed while reading)."""
    task = Arithmetic()
    rng = random.Random(2)
    out_of_order = 0
    for _ in range(50):
        ex = task.example(rng, 4)
        words = [task.vocab[t] for t in ex.tokens[:-task.window] if t != PAD]
        defined = set()
        for i, w in enumerate(words[:-2]):
            if w.startswith("v") and words[i + 1] == "=":
                if words[i + 2].startswith("v") and words[i + 2] not in defined:
                    out_of_order += 1
                    break
                defined.add(w)
    assert out_of_order > 25


# --- shared helpers ---------------------------------------------------------------------------------


def test_pack_windows_keeps_pieces_whole_and_fills_with_filler():
    rng = random.Random(0)
    out = pack_windows([[1, 2, 3], [4, 5, 6], [7]], window=5, n_windows=3, filler=[9], rng=rng)
    assert out == [1, 2, 3, 9, 9, 4, 5, 6, 7, 9, 9, 9, 9, 9, 9]
    assert pack_windows([[1, 2]], window=3, n_windows=2) == [1, 2, PAD, PAD, PAD, PAD]
    with pytest.raises(ValueError, match="windows"):
        pack_windows([[1, 2, 3]] * 3, window=4, n_windows=2)
    with pytest.raises(ValueError, match="does not fit"):
        pack_windows([[1] * 5], window=4, n_windows=2)


def test_check_example_rejects_an_answer_that_opens_a_window():
    task = Rule110(n_strings=1, n_bits=3, max_depth=0)
    ex = task.example(random.Random(0), 0)
    mask = list(ex.loss_mask)
    mask[task.window] = 1  # the first token of the prediction window
    with pytest.raises(ValueError, match="opens a window"):
        check_example(task, Example(ex.tokens, tuple(mask), 0))
    with pytest.raises(ValueError, match="tokens, expected"):
        check_example(task, Example(ex.tokens[:-1], ex.loss_mask[:-1], 0))


def test_render_marks_answers():
    task = Rule110(n_strings=1, n_bits=3, max_depth=1)
    text = render(task, task.example(random.Random(0), 1))
    lines = text.splitlines()
    assert len(lines) == 2 and lines[0].startswith("@1 s ") and lines[1].startswith("@1 [")
