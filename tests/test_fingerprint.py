"""One fingerprint scheme: content hashes, stable across processes, used by every cache and store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from seapo.fingerprint import file_digest, folder_digest, model_fingerprint, stable_hash
from tests.inject.helpers import gsm8k_records, write_records


def test_stable_hash_is_the_same_in_another_process():
    value = {"b": [1, 2.5, "x"], "a": {"nested": True}}
    code = "from seapo.fingerprint import stable_hash; print(stable_hash({'a': {'nested': True}, 'b': [1, 2.5, 'x']}))"
    other = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()
    assert other == stable_hash(value)


def _change_weights_keeping_size_and_mtime(folder):
    weights = folder / "model.safetensors"
    st = weights.stat()
    data = bytearray(weights.read_bytes())
    data[-16:] = bytes(255 - b for b in data[-16:])  # the last tensor's bytes: same size, new values
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert weights.stat().st_size == st.st_size and weights.stat().st_mtime_ns == st.st_mtime_ns


def test_model_fingerprint_follows_content(tiny_model, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)
    assert model_fingerprint(copy) == model_fingerprint(tiny_model)  # the same weights: the same model
    before = file_digest(copy / "model.safetensors")
    _change_weights_keeping_size_and_mtime(copy)
    assert file_digest(copy / "model.safetensors") != before  # the memo notices (ctime changed)
    assert model_fingerprint(copy) != model_fingerprint(tiny_model)
    assert folder_digest(copy) != folder_digest(tiny_model)
    assert model_fingerprint("Qwen/Qwen2.5-7B-Instruct") == model_fingerprint("Qwen/Qwen2.5-7B-Instruct")


def _inject(records, out, model, template):
    command = [sys.executable, "-m", "seapo.cli", "inject", str(records), "--out", str(out), "--model", str(model),
               "--dtype", "fp32", "--max-new-tokens", "4", "--max-attempts", "1", "--strategy", "single",
               "--error-types", "logic", "--set", f"llm.prompt_template={json.dumps(template)}"]
    subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads((out / "summary.json").read_text())


def test_resume_keys_hold_across_processes_and_follow_the_weights(tiny_model, shared_data, tmp_path):
    """A custom prompt template resumes in a new process (Python's salted hash() broke this); a
    model folder whose weights changed (same size and mtime) is not mistaken for the old one."""
    records = write_records(tmp_path / "records.jsonl", gsm8k_records(shared_data, 4))
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    template = "Make an error ({error_type}: {description}) in this answer to {question}:\n{response}"
    out = tmp_path / "run"
    first = _inject(records, out, model, template)
    assert first["resumed_items"] == 0
    second = _inject(records, out, model, template)
    assert second["resumed_items"] == 4 and second["settings_key"] == first["settings_key"]
    _change_weights_keeping_size_and_mtime(model)
    third = _inject(records, out, model, template)
    assert third["resumed_items"] == 0 and third["settings_key"] != first["settings_key"]
