"""No bad value reaches a result (issue 9, class 5): every choice and range is checked at the
config layer with a clear error, from Python, YAML, ``--set`` and CLI options alike."""

from __future__ import annotations

import json
import math
import typing

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from seapo.cli import app
from seapo.errors import ConfigError
from seapo.pipeline.config import RunConfig, load_run_config, packaged_config


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "240"})


def _float_fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted names of every float setting of ``model`` and its sections."""
    out = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        candidates = [annotation, *typing.get_args(annotation)]
        section = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if section is not None:
            out += _float_fields(section, f"{prefix}{name}.")
        elif float in candidates:
            out.append(prefix + name)
    return out


def test_no_float_setting_of_any_stage_takes_inf_or_nan():
    from seapo.evaluate.runner import EvalConfig

    names = _float_fields(RunConfig) + [f"eval.{n}" for n in _float_fields(EvalConfig)]
    assert {"train.learning_rate", "train.beta", "inject.verifier.min_difference", "inject.llm.temperature"} <= set(
        names)
    for name in names:
        for bad in (math.inf, -math.inf, math.nan, "inf", "nan"):
            with pytest.raises(ConfigError) as err:
                load_run_config(None, {"eval": {}, name: bad} if name.startswith("eval.") else {name: bad})
            assert err.value.field == name, (name, bad, err.value)


@pytest.mark.parametrize("args, field", [
    (("--learning-rate", "inf"), "learning_rate"),
    (("--learning-rate", "nan"), "learning_rate"),
    (("--learning-rate", "1e9"), "learning_rate"),
    (("--beta", "-inf"), "beta"),
    (("--max-grad-norm", "nan"), "max_grad_norm"),
])
def test_train_refuses_non_finite_and_out_of_range_numbers_before_reading_anything(tmp_path, args, field):
    result = _invoke("train", str(tmp_path / "missing.jsonl"), "--output-dir", str(tmp_path / "t"), *args)
    assert result.exit_code == 2, result.output
    assert field in result.output and "Traceback" not in result.output
    assert not (tmp_path / "t").exists()  # refused before anything is written


@pytest.fixture(scope="module")
def records(tmp_path_factory, shared_data):
    out = tmp_path_factory.mktemp("records") / "records.jsonl"
    result = _invoke("prepare", str(shared_data / "preference" / "dpo_en_demo.json"), "--out", str(out),
                     "--limit", "5")
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("args, expected", [
    (("--limit", "-3"), "limit"),
    (("--limit", "0"), "limit"),
    (("--injector", "magic"), "unknown injector 'magic'"),
    (("--fallback", "maybe"), "fallback"),
    (("--strategy", "foo"), "unknown strategy 'foo'"),
    (("--error-types", "spelling"), "unknown error type"),
    (("--strategy", "single"), "exactly one error type"),
    (("--batch-size", "0"), "batch_size"),
    (("--set", "max_attempts.x=1"), "'max_attempts' is a single setting, not a section"),
    (("--set", "verifier.min_difference=nan"), "verifier.min_difference"),
])
def test_inject_refuses_every_bad_choice_and_range(records, tmp_path, args, expected):
    result = _invoke("inject", str(records), "--out", str(tmp_path / "run"), "--injector", "rules", *args) \
        if args[0] != "--injector" else _invoke("inject", str(records), "--out", str(tmp_path / "run"), *args)
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run" / "pairs.jsonl").exists()


def test_an_undecodable_records_file_is_bad_input_naming_its_line(tmp_path):
    records = tmp_path / "records.jsonl"
    good = {"id": "r1", "prompt": [{"role": "user", "content": "Say hi."}], "response": "Hi there, friend.",
            "source": {}}
    records.write_bytes((json.dumps(good) + "\n").encode() + b'{"id": "\xff\xfe"}\n')
    result = _invoke("inject", str(records), "--out", str(tmp_path / "run"), "--injector", "rules")
    assert result.exit_code == 2, result.output
    assert f"{records}:2" in result.output and "UTF-8" in result.output and "Traceback" not in result.output


def test_a_bad_override_is_named_at_the_override_not_at_the_packaged_yaml():
    with pytest.raises(ConfigError) as err:
        load_run_config(None, {"inject.max_attempts": 0})
    assert err.value.path is None and err.value.field == "inject.max_attempts"
    result = _invoke("config", "show", "--set", "inject.max_attempts=0")
    assert result.exit_code == 2 and "inject.max_attempts" in result.output
    assert str(packaged_config()) not in result.output and "demo.yaml" not in result.output
    for key in ("inject.max_attempts.x", "train.learning_rate.peak", "inject.llm.backend.batch_size.n"):
        result = _invoke("config", "show", "--set", f"{key}=1")
        assert result.exit_code == 2 and "not a section" in result.output and key in result.output, result.output
    # free-form sections take any sub-key; unknown sections list the known ones
    assert _invoke("config", "show", "--set", "inject.injector_options.depth=2").exit_code == 0
    result = _invoke("config", "show", "--set", "inject.nosuch.x=1")
    assert result.exit_code == 2 and "unknown setting" in result.output


@pytest.mark.parametrize("line, reason", [
    (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
    (b'{"a": NaN}', "NaN is not standard JSON"),
    (b'{"a": 1e400}', "too large"),
    (b"[" * 100_000 + b"]" * 100_000, "invalid JSON"),
    (b'{"a": "\xc3\x28"}', "not UTF-8"),
])
def test_seapos_own_files_are_read_strictly_naming_the_line(tmp_path, line, reason):
    from seapo.errors import InputError
    from seapo.io import read_jsonl

    path = tmp_path / "pairs.jsonl"
    path.write_bytes(b'{"ok": 1}\n' + line + b"\n")
    with pytest.raises(InputError, match=reason) as err:
        read_jsonl(path)
    assert (err.value.path, err.value.line) == (str(path), 2)


def test_seapos_writers_never_write_non_standard_json(tmp_path):
    from seapo.io import read_jsonl, write_json, write_jsonl

    write_jsonl(tmp_path / "a.jsonl", [{"mean": math.nan, "xs": [1.5, math.inf, -math.inf]}])
    write_json(tmp_path / "b.json", {"accuracy": math.nan, "n": 0})
    assert read_jsonl(tmp_path / "a.jsonl") == [{"mean": None, "xs": [1.5, None, None]}]  # strict reader
    assert json.loads((tmp_path / "b.json").read_text(), parse_constant=pytest.fail) == {"accuracy": None, "n": 0}


def test_a_run_refuses_llamacpp_generation_before_doing_any_work():
    """The trained model is a transformers folder: a run whose eval asks for llama.cpp would fail after
    training, and base and trained must generate with one backend."""
    with pytest.raises(ConfigError) as err:
        load_run_config(None, {"eval": {"generation_backend": "llamacpp"}})
    assert err.value.field is not None and err.value.field.startswith("eval") and "llamacpp" in str(err.value)
    assert load_run_config(None, {"eval": {"generation_backend": "auto"}}).eval.generation_backend == "auto"
