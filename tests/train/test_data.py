"""Reading training input, the held-out split and the pair selection (mixed / all)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from seapo.errors import ConfigError, InputError
from seapo.io import read_jsonl, write_jsonl
from seapo.train.data import load_preferences, select_pairs, split_heldout


def test_pairs_and_kto_layouts_give_the_same_groups(demo_negatives, tmp_path):
    rows = read_jsonl(demo_negatives)
    kto = [{"id": f"{r['id']}-{label}", "record_id": r["record_id"], "error_type": r["error_type"],
            "messages": [*r["prompt"], side], "label": label}
           for r in rows for side, label in ((r["chosen"], True), (r["rejected"], False))]
    write_jsonl(tmp_path / "kto.jsonl", kto)
    a, b = load_preferences(demo_negatives), load_preferences(tmp_path / "kto.jsonl")
    assert (a.layout, b.layout) == ("pairs", "kto")
    assert [(g.record_id, g.chosen, sorted((n.error_type, n.text) for n in g.negatives)) for g in a.groups] == \
           [(g.record_id, g.chosen, sorted((n.error_type, n.text) for n in g.negatives)) for g in b.groups]
    assert all(len(g.negatives) == 3 for g in a.groups)


def test_mixed_draws_one_negative_per_record_seeded_and_all_keeps_every_one(demo_negatives):
    groups = load_preferences(demo_negatives).groups
    mixed = select_pairs(groups, "mixed", seed=1)
    assert len(mixed) == len(groups) and len({p.record_id for p in mixed}) == len(groups)
    assert select_pairs(groups, "mixed", seed=1) == mixed  # seeded: the same draw again
    other = select_pairs(groups, "mixed", seed=2)
    assert [p.error_type for p in other] != [p.error_type for p in mixed]
    assert len(Counter(p.error_type for p in mixed)) > 1  # a real draw, not always the first type
    every = select_pairs(groups, "all", seed=1)
    assert len(every) == 3 * len(groups)
    for p in mixed:  # the drawn negative is one of that record's real negatives
        assert any(p.rejected == n.rejected and p.error_type == n.error_type for n in every)


def test_heldout_split_is_by_record_and_seeded(demo_negatives):
    groups = load_preferences(demo_negatives).groups
    train, held = split_heldout(groups, 0.25, seed=3)
    assert len(held) == 3 and len(train) == 9
    assert not {g.record_id for g in train} & {g.record_id for g in held}
    assert [g.record_id for g in split_heldout(groups, 0.25, seed=3)[1]] == [g.record_id for g in held]
    assert split_heldout(list(reversed(groups)), 0.25, seed=3)[1][0].record_id in {g.record_id for g in held}
    assert split_heldout(groups, 0.0, seed=3) == (groups, [])


def test_bad_split_and_pairing_values_name_their_setting(demo_negatives):
    groups = load_preferences(demo_negatives).groups
    with pytest.raises(ConfigError) as err:
        split_heldout(groups, 1.0, seed=3)
    assert err.value.field == "heldout_fraction"
    with pytest.raises(ConfigError) as err:
        select_pairs(groups, "single", seed=0)
    assert err.value.field == "pairing" and "single" in str(err.value)


def test_bad_rows_name_file_line_and_field(demo_negatives, tmp_path):
    lines = demo_negatives.read_text().splitlines()
    broken = json.loads(lines[1])
    broken["rejected"] = {"role": "assistant"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([lines[0], json.dumps(broken), *lines[2:]]) + "\n")
    with pytest.raises(InputError) as err:
        load_preferences(bad)
    assert err.value.line == 2 and err.value.field == "rejected" and str(bad) in str(err.value)
    missing = {k: v for k, v in json.loads(lines[0]).items() if k != "prompt"}
    bad.write_text(json.dumps(missing) + "\n")
    with pytest.raises(InputError, match="prompt"):
        load_preferences(bad)


def test_nothing_left_to_train_on_is_an_input_error(demo_negatives, tiny_config, tmp_path):
    from seapo.train.trainer import train

    positives = [{"record_id": r["record_id"], "messages": [*r["prompt"], r["chosen"]], "label": True}
                 for r in read_jsonl(demo_negatives) if r["error_type"] == "logic"]
    write_jsonl(tmp_path / "kto.jsonl", positives)
    with pytest.raises(InputError, match="no usable training pairs"):  # dpo needs pairs; these have no negative
        train(tmp_path / "kto.jsonl", tiny_config(algo="dpo"))
    with pytest.raises(InputError, match="max_length=16") as err:  # every prompt fills max_length
        train(demo_negatives, tiny_config(max_length=16))
    assert err.value.path == str(demo_negatives)


@pytest.mark.parametrize("micro", [2, 4, 6])
def test_kto_order_keeps_kl_pairs_mismatched_and_puts_a_pairs_rows_together_from_4_rows(demo_negatives, micro):
    from seapo.train.data import kto_pairs_share_a_batch, ordered_kto_rows

    pairs = select_pairs(load_preferences(demo_negatives).groups, "mixed", seed=0)[:12]  # one per record
    rows = ordered_kto_rows(pairs, micro, seed=0, group_by_length=True)
    assert len(rows) == 2 * len(pairs) and kto_pairs_share_a_batch(micro) is (micro >= 4)
    key = {(json.dumps(p.prompt), side): (p.record_id, label) for p in pairs
           for side, label in ((p.chosen, True), (p.rejected, False))}
    seen = []
    for start in range(0, len(rows), micro):
        batch = rows[start:start + micro]
        ids = [key[(json.dumps(r["prompt"]), r["completion"][0]["content"])] for r in batch]
        seen += ids
        assert [label for _, label in ids].count(True) == len(batch) // 2  # half desirable
        # TRL's KL row j: row j's prompt with row j-1's completion (rotated): never the row's own record.
        assert all(ids[j][0] != ids[j - 1][0] for j in range(len(batch)))
        if micro >= 4:  # [c0, c1, ..., r0, r1, ...]: a pair's two rows in this micro-batch, i and i + B/2
            half = len(batch) // 2
            assert [label for _, label in ids] == [True] * half + [False] * half
            assert [rid for rid, _ in ids[:half]] == [rid for rid, _ in ids[half:]]
        else:  # two rows of two different records; the pair's other row in the next micro-batch
            assert len({rid for rid, _ in ids}) == len(batch)
    assert sorted(seen) == sorted(key.values())  # every row once


def test_pairs_whose_responses_differ_only_past_max_length_are_dropped(tiny_model):
    from transformers import AutoTokenizer

    from seapo.train.data import Pair, drop_edits_past_max_length

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    prompt = [{"role": "user", "content": "Describe the river."}]
    long = "The river runs slowly through the wide green valley. " * 20
    early = Pair("early", prompt, "The river is 40 km long. " + long, "The river is 90 km long. " + long, "correctness")
    late = Pair("late", prompt, long + "It is 40 km long.", long + "It is 90 km long.", "correctness")
    kept, dropped = drop_edits_past_max_length([early, late], tokenizer, max_length=64)
    assert [p.record_id for p in kept] == ["early"] and dropped == 1  # truncated at 64, late is one text twice
    kept, dropped = drop_edits_past_max_length([early, late], tokenizer, max_length=1024)
    assert len(kept) == 2 and dropped == 0
