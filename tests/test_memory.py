"""MemoryModel: state layout, Algorithm 1 (passes, chunks, progress, cancel), gradients through all
passes into the initial state, streaming wake == batched wake, sparse bias == dense bias, files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dreamchat.errors import ModelError
from dreamchat.models import memory as M
from dreamchat.models.memory import (COPY_STATE, COPY_WRITTEN, ConsolidationCancelled, MemoryConfig,
                                     MemoryModel, SparseBias)
from dreamchat.models.wake import WakeSession

V, D = 200, 48
CFG = dict(n_embd=D, n_vocab=V, d_model=32, n_heads=2, head_dim=16, copy_heads=2, copy_key_dim=8,
           key_window=2, query_window=2, n_wording=10)


@pytest.fixture()
def emb():
    return np.random.default_rng(0).normal(0, 1, (V, D)).astype(np.float32)


@pytest.fixture(params=[(False, 1), (True, 1), (True, 2)], ids=["tower-keys", "hidden-keys", "squared-keys"])
def model(emb, request):
    """The memory model, with and without the hidden-state path of the copy keys and queries, and
    with keys stored as k (x) k."""
    torch.manual_seed(0)
    hidden, power = request.param
    m = MemoryModel(MemoryConfig(**CFG, copy_hidden=hidden, copy_key_power=power), emb,
                    wording_ids=range(100, 110))
    with torch.no_grad():  # open the gate a little so the bias is not ~0 in comparisons
        m.gate.bias.fill_(0.0)
        if hidden:  # it starts at zero; make it count
            m.copy.hidden_proj.weight.normal_(0, 0.2)
    return m.eval()


def day(T: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 3, (T, D)).astype(np.float32), rng.integers(0, V, T).astype(np.int64)


def test_state_layout(model):
    st = model.empty_state()
    K = 8 if model.config.copy_key_power == 1 else 36                     # k, or k (x) k's upper triangle
    assert st[COPY_STATE].shape == (1, 2, K, D)                        # [B, H, K, V], V = n_embd (D < 128)
    assert st[COPY_WRITTEN].shape == (1, V) and st[COPY_WRITTEN].dtype == torch.uint8
    tower = [k for k in st if k.startswith("tower.")]
    assert tower == ["tower.blocks.0.S", "tower.blocks.1.S"]
    assert all(st[k].shape == (1, 2, 16, 16) for k in tower)
    model.check_state(st)
    with pytest.raises(ValueError, match="copy.S"):
        model.check_state({k: v for k, v in st.items() if k != COPY_STATE})


def test_consolidate_one_chunk_equals_sleep_and_records_written_ids(model):
    h, tok = day(23)
    st = model.empty_state()
    got = model.consolidate([(h, tok)], st, passes=3)
    nxt = torch.cat([torch.as_tensor(tok[1:]), torch.tensor([-1])])[None]
    want = model.sleep(torch.as_tensor(h)[None], torch.as_tensor(tok)[None], nxt,
                       torch.ones(1, 23, dtype=torch.bool), st, passes=3)
    for k in want:
        assert torch.allclose(got[k].float(), want[k].float(), atol=1e-5), k
    written = set(np.nonzero(got[COPY_WRITTEN][0].numpy())[0])
    assert written == set(tok[1:].tolist())                             # values = the next tokens
    assert all(float(v.abs().sum()) == 0 for v in st.values())          # input untouched


def test_unwritten_positions_write_no_value_across_chunks(model):
    h, tok = day(40)
    st = model.empty_state()
    quiet = np.zeros(40, dtype=bool)
    quiet[[5, 19, 30]] = True                 # 19: the last of chunk 1, whose value is chunk 2's first token
    got = model.consolidate([(h[:20], tok[:20]), (h[20:], tok[20:])], st, passes=2, unwritten=quiet)
    nxt = np.append(tok[1:], -1)
    nxt[quiet] = -1
    want = model.sleep(torch.as_tensor(h[:20])[None], torch.as_tensor(tok[:20])[None],
                       torch.as_tensor(nxt[:20])[None], torch.ones(1, 20, dtype=torch.bool), st, passes=2)
    want = model.sleep(torch.as_tensor(h[20:])[None], torch.as_tensor(tok[20:])[None],
                       torch.as_tensor(nxt[20:])[None], torch.ones(1, 20, dtype=torch.bool), want, passes=2)
    for k in want:
        assert torch.allclose(got[k].float(), want[k].float(), atol=1e-5), k
    written = set(np.nonzero(got[COPY_WRITTEN][0].numpy())[0])
    assert written == set(nxt[nxt >= 0].tolist())
    with pytest.raises(ValueError, match="unwritten covers"):
        model.consolidate([(h, tok)], st, passes=1, unwritten=quiet[:30])


def test_passes_accumulate_and_chunks_hand_over(model):
    h, tok = day(40)
    st = model.empty_state()
    one = model.consolidate([(h, tok)], st, passes=1)
    two = model.consolidate([(h, tok)], st, passes=2)
    assert not torch.allclose(one[COPY_STATE], two[COPY_STATE])
    # two chunks: the last token of chunk 1 writes the first token of chunk 2 as its value
    split = model.consolidate([(h[:20], tok[:20]), (h[20:], tok[20:])], st, passes=2)
    assert split[COPY_WRITTEN][0, tok[20]] == 1
    assert not torch.allclose(split[COPY_STATE], two[COPY_STATE])      # hard eviction between chunks


def test_progress_and_cancel(model):
    h, tok = day(30)
    chunks = [(h[:15], tok[:15]), (h[15:], tok[15:])]
    calls = []
    model.consolidate(chunks, model.empty_state(), passes=2, on_progress=lambda *a: calls.append(a))
    assert calls == [(0, 2, 0, 2, 0), (0, 2, 1, 2, 15), (1, 2, 0, 2, 15), (1, 2, 1, 2, 30)]
    st = model.empty_state()
    st[COPY_STATE] += 0.5
    before = {k: v.clone() for k, v in st.items()}
    asked = []
    with pytest.raises(ConsolidationCancelled, match="memory is unchanged"):
        model.consolidate(chunks, st, passes=2, should_stop=lambda: asked.append(1) or len(asked) > 2)
    assert all(torch.equal(before[k], st[k]) for k in st)


def test_gradients_flow_through_every_pass_into_the_initial_state(model):
    h, tok = day(12)
    st = {k: (v.float().clone().requires_grad_(True) if v.dtype != torch.uint8 else v)
          for k, v in model.empty_state().items()}
    with torch.no_grad():
        for k in st:
            if st[k].dtype != torch.uint8:
                st[k].normal_(0, 0.1)
    nxt = torch.cat([torch.as_tensor(tok[1:]), torch.tensor([-1])])[None]
    new = model.sleep(torch.as_tensor(h)[None], torch.as_tensor(tok)[None], nxt,
                      torch.ones(1, 12, dtype=torch.bool), st, passes=3)
    q_h, q_t = day(5, seed=2)
    gate, read, wording = model.wake_features(torch.as_tensor(q_h)[None], torch.as_tensor(q_t)[None], new)
    (read.pow(2).sum() + wording.pow(2).sum() + gate.sum()).backward()
    for k, v in st.items():
        if v.dtype != torch.uint8:
            assert v.grad is not None and float(v.grad.abs().sum()) > 0, k
    assert float(model.copy.key_proj.weight.grad.abs().sum()) > 0      # keys are learned through S
    if model.config.copy_hidden:
        assert float(model.copy.hidden_proj.weight.grad.abs().sum()) > 0


def test_streaming_wake_equals_batched_wake(model):
    h, tok = day(30)
    st = model.consolidate([(h, tok)], model.empty_state(), passes=2)
    st[COPY_WRITTEN][0, 100], st[COPY_WRITTEN][0, 105] = 0, 1   # wording ids never written and written
    q_h, q_t = day(9, seed=3)
    with torch.no_grad():
        gate, read, wording = model.wake_features(torch.as_tensor(q_h)[None], torch.as_tensor(q_t)[None], st)
        dense = model.dense_bias(gate[0], read[0], wording[0], st[COPY_WRITTEN].expand(9, -1))   # (9, V)
    session = model.wake(st)
    first = session.feed(q_h[:4], q_t[:4])                               # a prompt, then token by token
    got = [first] + [session.feed(q_h[t:t + 1], q_t[t:t + 1]) for t in range(4, 9)]
    for bias, t in zip(got, [3, 4, 5, 6, 7, 8]):
        full = SparseBias(bias.ids, bias.values).apply(np.zeros(V, np.float32))
        assert np.allclose(full, dense[t].numpy(), atol=1e-4), t
    ids = set(got[-1].ids.tolist())
    assert ids == set(np.nonzero(st[COPY_WRITTEN][0].numpy())[0]) | set(range(100, 110))
    # the session worked on a copy
    again = model.wake(st).feed(q_h[:4], q_t[:4])
    assert np.allclose(again.values, first.values)


def test_bias_on_columns_equals_dense(model):
    h, tok = day(20)
    st = model.consolidate([(h, tok)], model.empty_state(), passes=1)
    q_h, q_t = day(6, seed=4)
    with torch.no_grad():
        gate, read, wording = model.wake_features(torch.as_tensor(q_h)[None], torch.as_tensor(q_t)[None], st)
        written = st[COPY_WRITTEN].expand(6, -1)
        dense = model.dense_bias(gate[0], read[0], wording[0], written)
        cols = torch.tensor([0, 5, 100, 104, int(tok[3]), 199])
        cols = torch.unique(cols)
        assert torch.allclose(model.bias_on(cols, gate[0], read[0], wording[0], written), dense[:, cols], atol=1e-5)
    assert float(dense[:, [i for i in range(V) if not written[0, i] and not 100 <= i < 110]].abs().max()) == 0


def test_save_load_roundtrip_and_errors(model, emb, tmp_path):
    path = tmp_path / "w.memory.safetensors"
    model.save(path, backbone_fingerprint="abc123")
    meta = M.read_metadata(path)
    assert meta["format"] == "dreamchat-memory" and json.loads(meta["config"])["d_model"] == 32
    loaded = MemoryModel.load(path, emb, backbone_fingerprint="abc123")
    assert loaded.fingerprint == model.fingerprint and loaded.backbone_fingerprint == "abc123"
    h, tok = day(10)
    a = model.consolidate([(h, tok)], model.empty_state(), passes=2)
    b = loaded.consolidate([(h, tok)], loaded.empty_state(), passes=2)
    assert all(torch.allclose(a[k].float(), b[k].float()) for k in a)

    with pytest.raises(ModelError, match="not found"):
        MemoryModel.load(tmp_path / "missing.safetensors", emb)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ModelError, match="unreadable"):
        MemoryModel.load(bad, emb)
    with pytest.raises(ModelError, match="n_vocab=200"):
        MemoryModel.load(path, emb[:, :10])
    with pytest.raises(ModelError, match="another backbone"):
        MemoryModel.load(path, emb, backbone_fingerprint="ffff")

    class FakeBackbone:
        fingerprint = "abc123"

        def output_embeddings(self):
            return emb
    assert MemoryModel.load(path, FakeBackbone()).fingerprint == model.fingerprint
    FakeBackbone.fingerprint = "other"
    with pytest.raises(ModelError, match="another backbone"):
        MemoryModel.load(path, FakeBackbone())


def test_config_json_leaves_out_later_fields_at_their_old_value():
    """Weights made before `copy_hidden` existed keep their config text, hence their fingerprint
    (users' memory snapshots record it); the field is written when it is on, and read back."""
    plain = json.loads(MemoryConfig(**CFG).to_json())
    assert "copy_hidden" not in plain and MemoryConfig.from_json(json.dumps(plain)).copy_hidden is False
    on = MemoryConfig(**CFG, copy_hidden=True)
    assert json.loads(on.to_json())["copy_hidden"] is True and MemoryConfig.from_json(on.to_json()) == on


def test_squared_keys_match_by_squared_cosines_and_keep_the_weights(emb):
    """copy_key_power 2 stores k (x) k: unit norm, dot products the squared cosines of the keys, so
    a near key and a half-way key are told apart more sharply. `grow_into` switches a trained model
    to it keeping every weight, and the config text names the power only when it is 2."""
    torch.manual_seed(0)
    plain = MemoryModel(MemoryConfig(**CFG), emb, wording_ids=range(100, 110))
    squared = MemoryModel(MemoryConfig(**CFG, copy_key_power=2), emb, wording_ids=range(100, 110))
    k = torch.nn.functional.normalize(torch.randn(5, 3, 8), dim=-1)
    lifted = squared.copy.lift(k)                                       # (5, 3, 36): 8 * 9 / 2
    assert lifted.shape == (5, 3, 36) and torch.allclose(lifted.norm(dim=-1), torch.ones(5, 3))
    assert torch.allclose(lifted[0] @ lifted[1].T, (k[0] @ k[1].T) ** 2, atol=1e-6)
    assert torch.equal(plain.copy.lift(k), k)
    M.grow_into(squared, plain.state_dict(), plain.config)
    assert all(torch.equal(t, plain.state_dict()[name]) for name, t in squared.state_dict().items())
    assert "copy_key_power" not in json.loads(plain.config.to_json())
    assert json.loads(squared.config.to_json())["copy_key_power"] == 2
    with pytest.raises(ValueError, match="copy_key_power must be 1 or 2"):
        MemoryConfig(**CFG, copy_key_power=3)


def test_a_grown_hidden_path_computes_what_the_model_did(emb):
    """`grow_into` adds the hidden-state path at zero: same sleep state and wake bias as before."""
    torch.manual_seed(0)
    old = MemoryModel(MemoryConfig(**CFG), emb, wording_ids=range(100, 110)).eval()
    with torch.no_grad():
        old.gate.bias.fill_(0.0)
    new = MemoryModel(MemoryConfig(**CFG, copy_hidden=True), emb, wording_ids=range(100, 110)).eval()
    M.grow_into(new, old.state_dict(), old.config)
    h, tok = day(25)
    st_old = old.consolidate([(h, tok)], old.empty_state(), passes=2)
    st_new = new.consolidate([(h, tok)], new.empty_state(), passes=2)
    assert all(torch.equal(st_old[k], st_new[k]) for k in st_old)
    q_h, q_t = day(6, seed=7)
    a, b = old.wake(st_old).feed(q_h, q_t), new.wake(st_new).feed(q_h, q_t)
    assert np.array_equal(a.ids, b.ids) and np.allclose(a.values, b.values, atol=1e-6)
    with pytest.raises(ValueError, match="cannot shrink copy_hidden"):
        M.grow_into(old, new.state_dict(), new.config)


def test_value_window_writes_shares_of_earlier_tokens_and_grows_in_at_zero(emb):
    """With `value_window`, position t also writes tanh(pointer) shares of the tokens up to it
    (value-first statements: the name's key can hold the value said before it). Grown into a
    model without it, the shares start at zero: the same sleep state, and still a gradient."""
    torch.manual_seed(0)
    old = MemoryModel(MemoryConfig(**CFG), emb, wording_ids=range(100, 110)).eval()
    new = MemoryModel(MemoryConfig(**CFG, value_window=3), emb, wording_ids=range(100, 110)).eval()
    M.grow_into(new, old.state_dict(), old.config)
    h, tok = day(25)
    st_old = old.consolidate([(h, tok)], old.empty_state(), passes=2)
    st_new = new.consolidate([(h, tok)], new.empty_state(), passes=2)
    assert all(torch.equal(st_old[k], st_new[k]) for k in st_old)

    hidden, tokens = torch.as_tensor(h)[None].float(), torch.as_tensor(tok)[None]
    nxt = torch.cat([tokens[:, 1:], torch.full((1, 1), -1)], dim=1)
    valid = torch.ones_like(tokens, dtype=torch.bool)
    state = new.sleep(hidden, tokens, nxt, valid, new.empty_state(), passes=1)
    state[COPY_STATE].sum().backward()
    assert new.copy.value_amount.grad != 0     # the amount opens first; the pointer then learns where

    # Share 0.5 of the token one back (the first position has none: its own), nothing else: the
    # same state as writing that by hand.
    with torch.no_grad():
        new.copy.value_bias.copy_(torch.tensor([-1e4, 0.0, -1e4]))
        new.copy.value_gate.bias.fill_(1e4)
        new.copy.value_amount.fill_(0.5)
    one_back = torch.cat([tokens[:, :1], tokens[:, :-1]], dim=1)
    old.copy_values = lambda t, n, w: old.emb_v[n] * w[..., None] + 0.5 * old.emb_v[one_back] * w[..., None]
    with torch.no_grad():
        by_hand = old.sleep(hidden, tokens, nxt, valid, old.empty_state(), passes=2)
        shared = new.sleep(hidden, tokens, nxt, valid, new.empty_state(), passes=2)
    assert torch.allclose(by_hand[COPY_STATE], shared[COPY_STATE], atol=1e-5)
    assert json.loads(new.config.to_json())["value_window"] == 3
    assert "value_window" not in json.loads(old.config.to_json())


def test_fingerprint_changes_with_weights(model):
    fp = model.fingerprint
    with torch.no_grad():
        model.copy_log_scale += 0.1
    assert model.fingerprint != fp and len(fp) == 64


def test_wake_only_weights_never_change_what_a_sleep_writes(emb):
    """Every slow weight `wake_only` names leaves a sleep's state bit for bit as it was; every other
    one changes it (so a fine-tune of the wake-only ones may read the memories of its start)."""
    torch.manual_seed(0)
    model = MemoryModel(MemoryConfig(**CFG, copy_hidden=True, copy_key_power=2, value_window=3), emb,
                        wording_ids=range(100, 110)).eval()
    with torch.no_grad():  # the zero-initialised paths must count for the check to mean anything
        model.copy.hidden_proj.weight.normal_(0, 0.2)
        model.copy.value_gate.weight.normal_(0, 0.2)
        model.copy.value_amount.fill_(0.5)
    h, tok = day(23)
    want = model.consolidate([(h, tok)], model.empty_state(), passes=2)
    for name, p in model.named_parameters():
        kept = p.detach().clone()
        with torch.no_grad():
            p.add_(torch.randn_like(p) * 0.5)
        got = model.consolidate([(h, tok)], model.empty_state(), passes=2)
        with torch.no_grad():
            p.copy_(kept)
        same = all(torch.equal(got[k], want[k]) for k in want)
        assert same == M.wake_only(name), name


def test_calibrate_strengthens_the_copy_read_and_nothing_else(model, emb, tmp_path, capsys):
    from dreamchat.models import calibrate
    path, out = tmp_path / "w.memory.safetensors", tmp_path / "new" / "w.memory.safetensors"
    model.save(path, backbone_fingerprint="abc123")
    assert calibrate.main([str(path), "--copy-scale", "1.6", "--out", str(out)]) == 0
    assert "copy read x1.6" in capsys.readouterr().out
    new = MemoryModel.load(out, emb, backbone_fingerprint="abc123")
    meta = M.read_metadata(out)
    assert json.loads(meta.pop(M.READS_MEMORIES_OF)) == [model.fingerprint] == list(new.reads_memories_of)
    assert meta == M.read_metadata(path) and new.fingerprint != model.fingerprint
    old_t, new_t = model.state_dict(), new.state_dict()
    assert torch.allclose(new_t["copy_log_scale"], old_t["copy_log_scale"] + np.log(1.6))
    assert all(torch.equal(old_t[k], new_t[k]) for k in old_t if k != "copy_log_scale")

    # Sleep writes the same state; at wake the remembered tokens' logits move 1.6 times as far.
    h, tok = day(12)
    state = model.consolidate([(h, tok)], model.empty_state(), passes=2)
    assert all(torch.equal(state[k], v) for k, v in new.consolidate([(h, tok)], new.empty_state(), passes=2).items())
    hw, tw = day(5, seed=2)
    with torch.no_grad():
        feats = model.wake_features(torch.from_numpy(hw)[None], torch.from_numpy(tw)[None], state)
        written = state[COPY_WRITTEN].float().expand(5, -1)
        old_b, new_b = (m.dense_bias(*(x[0] for x in feats), written) for m in (model, new))
    copied = written[0].bool().clone()
    copied[model.wording_ids] = False
    assert copied.any() and torch.allclose(new_b[:, copied], 1.6 * old_b[:, copied], atol=1e-5)
    unwritten = ~written[0].bool()
    assert torch.allclose(new_b[:, unwritten], old_b[:, unwritten], atol=1e-6)

    # Calibrated twice, the file reads the memories of both earlier weights; saving keeps the list.
    twice = tmp_path / "twice.memory.safetensors"
    assert calibrate.main([str(out), "--copy-scale", "0.5", "--out", str(twice)]) == 0
    assert MemoryModel.load(twice, emb).reads_memories_of == (new.fingerprint, model.fingerprint)
    new.save(tmp_path / "resaved.safetensors")
    assert MemoryModel.load(tmp_path / "resaved.safetensors", emb).reads_memories_of == (model.fingerprint,)

    assert calibrate.main([str(path), "--copy-scale", "0", "--out", str(out)]) == 1
    assert "positive number" in capsys.readouterr().err
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors")
    assert calibrate.main([str(tmp_path / "junk.safetensors"), "--copy-scale", "2", "--out", str(out)]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    (tmp_path / "a-file").write_text("")
    assert calibrate.main([str(path), "--copy-scale", "2", "--out", str(tmp_path / "a-file" / "w")]) == 1
    assert "cannot write" in capsys.readouterr().err


def test_shipped_weights_match_their_backbone():
    path = M.default_weights_path()
    if not path.is_file():
        pytest.skip("shipped weights not built yet")
    meta = M.read_metadata(path)
    assert M.shipped_weights_for(meta["backbone_fingerprint"]) == path
    assert M.shipped_weights_for("not-a-fingerprint") is None
    config = MemoryConfig.from_json(meta["config"])
    assert (config.n_embd, config.n_vocab) == (576, 49152)


def test_traced_wake_step_equals_the_eager_step(model):
    """The traced one-token feed (wake.py) gives the eager feed's biases, token after
    token, is traced once and reused, and is dropped when the model moves (it holds old tensors)."""
    h, tok = day(20)
    st = model.consolidate([(h, tok)], model.empty_state(), passes=1)
    q_h, q_t = day(8, seed=4)
    traced, eager = model.wake(st), WakeSession(model, st, traced=False)
    for t in range(8):
        a = traced.feed(q_h[t:t + 1], q_t[t:t + 1])
        b = eager.feed(q_h[t:t + 1], q_t[t:t + 1])
        assert np.array_equal(a.ids, b.ids) and np.allclose(a.values, b.values, atol=1e-5), t
    step = model.__dict__["_wake_step"]
    # Another day's memory (more written ids, so another size of the session's fixed products)
    # reuses the same trace and still agrees with the eager feed.
    h2, tok2 = day(60, seed=5)
    st2 = model.consolidate([(h2, tok2)], st, passes=1)
    traced, eager = model.wake(st2), WakeSession(model, st2, traced=False)
    assert len(traced.ids) > len(a.ids)
    for t in range(4):
        a2, b2 = traced.feed(q_h[t:t + 1], q_t[t:t + 1]), eager.feed(q_h[t:t + 1], q_t[t:t + 1])
        assert np.allclose(a2.values, b2.values, atol=1e-5), t
    assert model.__dict__["_wake_step"] is step
    assert traced.graph is None  # CUDA graphs are for CUDA only
    model.to(torch.float32)
    assert model.__dict__["_wake_step"] is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_graph_wake_step_equals_the_eager_step(model):
    """On CUDA each session replays its traced step from a CUDA graph over buffers of its own: it
    agrees with the eager feed token after token, also across a feed of several tokens between
    one-token feeds, and two sessions of one model do not share state."""
    model.to("cuda")
    h, tok = day(20)
    st = model.consolidate([(h, tok)], model.empty_state(), passes=1)
    q_h, q_t = day(12, seed=4)
    graphed, other, eager = model.wake(st), model.wake(st), WakeSession(model, st, traced=False)
    other.feed(q_h[5:6], q_t[5:6])  # another session's replay must not move this one's state
    for t in list(range(4)) + [(4, 8)] + list(range(8, 12)):
        sl = slice(t, t + 1) if isinstance(t, int) else slice(*t)
        a, b = graphed.feed(q_h[sl], q_t[sl]), eager.feed(q_h[sl], q_t[sl])
        assert np.array_equal(a.ids, b.ids) and np.allclose(a.values, b.values, atol=1e-4), t
    assert graphed.graph is not None and other.graph is not None and graphed.graph is not other.graph


def test_a_tower_with_attention_keeps_the_eager_step(emb):
    torch.manual_seed(0)
    m = MemoryModel(MemoryConfig(**{**CFG, "tower_layout": "AG"}), emb, wording_ids=range(100, 110)).eval()
    h, tok = day(12)
    st = m.consolidate([(h, tok)], m.empty_state(), passes=1)
    session = m.wake(st)
    for t in range(3):
        session.feed(h[t:t + 1], tok[t:t + 1])
    assert m.__dict__.get("_wake_step") is None
