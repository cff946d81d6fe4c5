"""Secrets never reach a file (issue 9, class 6): a token given on the command line or in a
setting is redacted in every file a run writes, and run files have one mode."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from seapo.errors import ConfigError
from seapo.redact import REDACTED, is_secret_name, redact, redact_argv, redact_text

TOKENS = {"hf": "hf_SeapoTestTokenAAAA1234", "sk": "sk-proj-SeapoTestKeyBBBB5678", "word": "opensesame-CCCC9012",
          "url": "pw-DDDD3456"}


def test_secret_names_and_values():
    for name in ("api_key", "OPENAI_API_KEY", "hf_token", "token", "--hf-token", "client_secret", "password",
                 "Authorization", "access_token", "key"):
        assert is_secret_name(name), name
    for name in ("max_new_tokens", "min_changed_tokens", "long_positive_tokens", "api_key_env", "tokenizer",
                 "author", "keyword", "model"):
        assert not is_secret_name(name), name
    text = f"use {TOKENS['hf']} or {TOKENS['sk']} at https://me:{TOKENS['url']}@example.org/v1"
    cleaned = redact_text(text)
    assert not any(t in cleaned for t in TOKENS.values()) and "example.org/v1" in cleaned
    assert redact({"backend": {"api_key": "x", "api_key_env": "OPENAI_API_KEY", "max_new_tokens": 9}}) == \
        {"backend": {"api_key": REDACTED, "api_key_env": "OPENAI_API_KEY", "max_new_tokens": 9}}


def test_command_lines_are_redacted():
    argv = ["seapo", "run", "--api-key", TOKENS["word"], f"--hf-token={TOKENS['word']}", "--set",
            f"inject.injector_options.token={TOKENS['word']}", "--model", "HuggingFaceTB/SmolLM2-135M-Instruct",
            TOKENS["hf"]]
    cleaned = redact_argv(argv)
    assert TOKENS["word"] not in " ".join(cleaned) and TOKENS["hf"] not in " ".join(cleaned)
    assert cleaned[:3] == ["seapo", "run", "--api-key"] and "HuggingFaceTB/SmolLM2-135M-Instruct" in cleaned


def test_config_errors_do_not_echo_a_secret_value():
    from seapo.inject.pipeline import InjectConfig

    with pytest.raises(ConfigError) as err:
        InjectConfig(strategy=TOKENS["sk"])
    assert TOKENS["sk"] not in str(err.value)


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_no_secret_reaches_any_file_of_a_run_and_run_files_are_0644(tmp_path, tiny_model):
    out = tmp_path / "run"
    env = {**os.environ, "HF_TOKEN": TOKENS["hf"], "OPENAI_API_KEY": TOKENS["sk"]}
    command = [sys.executable, "-m", "seapo.cli", "run", "--out", str(out),
               "--set", "prepare.limit=6", "--set", "inject.injector=rules",
               "--set", f"inject.injector_options.api_key={TOKENS['word']}",
               "--set", f"inject.injector_options.endpoint=https://me:{TOKENS['url']}@example.org/v1",
               "--set", f"inject.injector_options.note={TOKENS['hf']}",
               "--set", f"train.model={tiny_model}", "--set", "train.max_steps=1", "--set", "train.batch_size=4",
               "--set", "train.max_length=128", "--set", "train.merge=false", "--set", "train.heldout_fraction=0"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not any(t in done.stdout + done.stderr for t in TOKENS.values())  # the log
    files = _files(out)
    assert {"config.yaml", "environment.json", "report.md", "stages.json"} <= {p.name for p in files}
    for path in files:
        data = path.read_bytes()
        for token in TOKENS.values():
            assert token.encode() not in data, f"{token} written to {path}"
    assert REDACTED in (out / "config.yaml").read_text() and REDACTED in (out / "environment.json").read_text()
    umask = os.umask(0)
    os.umask(umask)
    expected = 0o666 & ~umask
    modes = {str(p.relative_to(out)): stat.S_IMODE(p.stat().st_mode) for p in files}
    odd = {name: oct(mode) for name, mode in modes.items() if mode != expected and "/checkpoints/" not in name}
    assert not odd, f"run files not {oct(expected)}: {odd}"
