"""``seapo inject --ray``: the same run on a Ray Data actor pool (a local Ray cluster on 127.0.0.1,
started here), on real UltraFeedback records. It must write exactly what the local run writes,
survive a killed worker actor and a killed driver, and lose and repeat nothing (docs/ray.md).

Skipped when ray[data] is not installed, unless SEAPO_REQUIRE_RAY is set (.ci/run sets it: CI
installs the extra, so a missing Ray there is a failure, not a skip).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seapo.distributed import RayConfig
from seapo.errors import ConfigError
from seapo.inject.pipeline import InjectConfig, inject
from seapo.inject.store import InjectionStore
from tests.inject.helpers import SlowRules, ultrafeedback_records, write_records

REPO = Path(__file__).resolve().parents[2]
N_RECORDS = 40
RULES = {"injector": "rules", "strategy": "all", "chunk_size": 8}
"""120 items (40 records x 3 types) in 15 batches: both workers get several."""
FILES = ("pairs.jsonl", "negatives.jsonl", "kto.jsonl", "rejected.jsonl", "plan.jsonl", "dataset_info.json")
UNTIMED = ("wall_time_s", "ray")

try:
    import ray
    import ray.data  # noqa: F401 - the extra's other half
    RAY_MISSING = None
except ImportError as exc:  # pragma: no cover - CI installs it
    ray = None
    RAY_MISSING = f"ray[data] is not installed ({exc}); pip install 'seapo[ray]' (scripts/setup.sh does)"

needs_ray = pytest.mark.skipif(RAY_MISSING is not None and not os.environ.get("SEAPO_REQUIRE_RAY"),
                               reason=RAY_MISSING or "")


def _path_with_repo() -> str:
    # The workers must import this checkout's seapo (and tests.inject.helpers for SlowRules).
    return os.pathsep.join(p for p in (str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")) if p)


@pytest.fixture(scope="module")
def ray_cluster():
    """A local two-CPU Ray cluster on 127.0.0.1 for this module; yields its GCS address."""
    if RAY_MISSING is not None:
        pytest.fail(f"SEAPO_REQUIRE_RAY is set but {RAY_MISSING}")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", object_store_memory=200 * 2**20,
             runtime_env={"env_vars": {"PYTHONPATH": _path_with_repo()}}, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def records(shared_data):
    return ultrafeedback_records(shared_data, N_RECORDS)


@pytest.fixture(scope="module")
def local_run(records, tmp_path_factory):
    """The same injection without Ray: what every Ray run must reproduce."""
    return inject(records, tmp_path_factory.mktemp("local"), InjectConfig(**RULES))


def _summary(folder: Path, *leave_out: str) -> dict:
    summary = json.loads((folder / "summary.json").read_text())
    summary.get("shortcut_audit", {}).pop("wall_time_s", None)  # the audit's own timing
    return {k: v for k, v in summary.items() if k not in UNTIMED + leave_out}


def assert_same_outputs(expected: Path, got: Path, *leave_out: str) -> None:
    for name in FILES:
        assert (got / name).read_bytes() == (expected / name).read_bytes(), f"{name} differs"
    assert _summary(got, *leave_out) == _summary(expected, *leave_out)


def _assert_the_pool_let_go(timeout_s: float = 30.0) -> None:
    """Every CPU of the test cluster is free again (a stopped run's actors are stopped, not left
    holding the CPUs: the next run in the process would wait for them forever)."""
    deadline = time.monotonic() + timeout_s
    while ray.available_resources().get("CPU", 0) < ray.cluster_resources().get("CPU", 0):
        assert time.monotonic() < deadline, f"actors still hold CPUs: {ray.available_resources()}"
        time.sleep(0.5)


def _stored(folder: Path) -> dict[str, str]:
    with sqlite3.connect(folder / "injections.sqlite") as conn:
        rows = conn.execute("SELECT record_id || '/' || error_type, session FROM items").fetchall()
    assert len(rows) == len(dict(rows))
    return dict(rows)


# ------------------------------------------------------------------------------------------- settings


def test_ray_settings_from_python_yaml_and_the_cli():
    from seapo.config.cli import build_flags
    from seapo.inject.cli import ALIASES

    assert not InjectConfig().ray.enabled
    assert InjectConfig(ray="auto").ray.address == "auto"  # `ray: auto` in YAML
    assert InjectConfig.load(None, {"ray.address": "10.0.0.1:6379", "ray.workers": 4}).ray.workers == 4
    decls = {d for f in build_flags(InjectConfig, aliases=ALIASES) if f.path.startswith("ray.") for d in f.decls}
    assert decls == {"--ray", "--ray-workers", "--ray-cpus-per-worker", "--ray-gpus-per-worker"}
    with pytest.raises(ConfigError, match="workers"):
        InjectConfig(ray={"address": "auto", "workers": 0})


def test_seapo_run_passes_ray_to_inject_and_profile_without_changing_their_keys(tmp_path):
    from seapo.pipeline.config import RunConfig
    from seapo.pipeline.run import NOT_IN_KEY, _sections

    plain = RunConfig(profile={"data": "x.jsonl"})
    on_ray = plain.updated(ray="auto")
    before = _sections(plain, tmp_path / "records.jsonl", tmp_path / "profile.json")
    after = _sections(on_ray, tmp_path / "records.jsonl", tmp_path / "profile.json")
    assert after["inject"].ray.address == after["profile"].ray.address == "auto"
    assert before["inject"].ray.address is None
    for stage in ("inject", "profile"):
        assert (after[stage].model_dump(mode="json", exclude=NOT_IN_KEY[stage])
                == before[stage].model_dump(mode="json", exclude=NOT_IN_KEY[stage]))


def test_without_ray_installed_the_error_says_what_to_install(monkeypatch):
    from seapo import distributed

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ConfigError, match=r"pip install 'seapo\[ray\]'"):
        distributed.connect(distributed.RayConfig(address="local"))


# ----------------------------------------------------------------------------------------- on Ray


@needs_ray
def test_rules_on_ray_write_exactly_what_the_local_run_writes(ray_cluster, records, local_run, tmp_path,
                                                              monkeypatch):
    import seapo.inject.pipeline as pipeline

    def not_here(*args, **kwargs):
        raise AssertionError("a chunk ran on the driver: with --ray every chunk runs on the workers")

    monkeypatch.setattr(pipeline, "run_chunk", not_here)  # the workers are other processes: unaffected
    result = inject(records, tmp_path, InjectConfig(**RULES, ray={"address": "auto", "workers": 2}))
    assert result.summary["ray"] == {"address": "auto", "workers": 2, "batch_size": 8}
    assert_same_outputs(local_run.out_dir, tmp_path)
    assert result.summary["pairs"] > 0 and result.summary["rejected_items"] >= 0
    assert len(set(_stored(tmp_path).values())) == 1 and len(_stored(tmp_path)) == 3 * N_RECORDS

    again = inject(records, tmp_path, InjectConfig(**RULES, ray={"address": "auto", "workers": 2}))
    assert again.summary["resumed_items"] == 3 * N_RECORDS and "ray" not in again.summary  # nothing sent to Ray
    assert_same_outputs(local_run.out_dir, tmp_path, "resumed_items")


def _actor_pids() -> set[int]:
    """The Ray Data map actors under this process (its Ray cluster's raylet started them)."""
    import psutil

    pids = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if "MapWorker" in " ".join(child.cmdline()):
                pids.add(child.pid)
        except psutil.Error:
            continue
    return pids


def _wait_gone(pid: int, timeout: float = 30.0) -> None:
    import psutil

    try:
        psutil.Process(pid).wait(timeout)
    except psutil.NoSuchProcess:
        pass


@needs_ray
def test_a_worker_killed_mid_run_loses_nothing_and_repeats_nothing(ray_cluster, records, local_run, tmp_path,
                                                                   monkeypatch):
    committed: list[tuple[str, str]] = []
    seen: list[set[int]] = []
    killed: list[int] = []
    real = InjectionStore.put_rows

    def put_rows(self, items):
        items = list(items)
        real(self, items)
        committed.extend((i["record_id"], i["error_type"]) for i in items)
        seen.append(_actor_pids())
        if not killed and seen[-1]:  # after the first batch is stored: kill a worker in the middle of its next
            victim = min(seen[-1])
            os.kill(victim, signal.SIGKILL)
            _wait_gone(victim)
            killed.append(victim)

    monkeypatch.setattr(InjectionStore, "put_rows", put_rows)
    # SlowRules: the rules injector's negatives, 0.3 s per call, so the run is still going when a worker dies.
    result = inject(records, tmp_path, InjectConfig(**RULES, ray={"address": "auto", "workers": 2}),
                    injector=SlowRules(delay=0.3))
    assert killed, "no worker was found to kill"
    assert len(committed) == len(set(committed)) == 3 * N_RECORDS  # every item committed exactly once
    after = set().union(*seen[1:])
    assert killed[0] not in after and after - seen[0], "Ray restarted no worker after the kill"
    assert result.summary["ray"]["workers"] == 2
    assert_same_outputs(local_run.out_dir, tmp_path)


KILL_DRIVER = """
import os, signal, sys
from seapo.inject.store import InjectionStore
from seapo.cli import main

real, after, commits = InjectionStore.put_rows, int(sys.argv[1]), []

def put_rows(self, items):
    real(self, items)
    commits.append(1)
    if len(commits) == after:  # killed right after its third commit, workers busy with later batches
        os.kill(os.getpid(), signal.SIGKILL)

InjectionStore.put_rows = put_rows
sys.argv = ["seapo", "inject", *sys.argv[2:]]
main()
"""


@needs_ray
def test_a_driver_killed_mid_run_resumes_from_its_store(ray_cluster, records, local_run, tmp_path):
    records_path = write_records(tmp_path / "records.jsonl", records)
    out = tmp_path / "run"
    args = [str(records_path), "--out", str(out), "--injector", "rules", "--strategy", "all", "--chunk-size", "8",
            "--ray", ray_cluster, "--ray-workers", "2"]
    env = {**os.environ, "PYTHONPATH": _path_with_repo()}
    killed = subprocess.run([sys.executable, "-c", KILL_DRIVER, "3", *args], capture_output=True, text=True,
                            timeout=300, env=env)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    first = _stored(out)
    assert len(first) == 3 * 8  # three whole batches, nothing of the batches in flight

    subprocess.run([sys.executable, "-m", "seapo.cli", "inject", *args], check=True, capture_output=True, timeout=300,
                   env=env)
    after = _stored(out)
    assert len(after) == 3 * N_RECORDS
    assert all(after[key] == session for key, session in first.items())  # the stored items were not redone
    assert len(set(after.values())) == 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_items"] == len(first) and summary["ray"]["address"] == ray_cluster
    assert_same_outputs(local_run.out_dir, out, "resumed_items")


@needs_ray
@pytest.mark.slow
def test_the_llm_injector_on_the_embedded_model_on_ray_matches_the_local_run(ray_cluster, records, embedded_model,
                                                                            tmp_path):
    """Each actor loads the model once; with batches of the same records as the local chunks
    (4 records a type, chunk 4), greedy decoding gives the same negatives."""
    from tests.inject.helpers import tiny_llm

    few = records[:4]
    config = InjectConfig(injector="llm", strategy="all", chunk_size=4, max_attempts=1,
                          llm=tiny_llm(embedded_model, max_new_tokens=48))
    local = inject(few, tmp_path / "local", config)
    on_ray = inject(few, tmp_path / "ray", config.updated({"ray.address": "auto", "ray.workers": 2}))
    assert on_ray.summary["ray"]["workers"] == 2
    assert_same_outputs(local.out_dir, on_ray.out_dir)
    assert {p["injector"] for p in map(json.loads, (tmp_path / "ray" / "pairs.jsonl").read_text().splitlines())} \
        <= {"llm", "rules"}


@needs_ray
def test_profile_on_ray_matches_the_local_profile(ray_cluster, shared_data, tiny_model, tmp_path):
    from seapo.profile.config import ProfileConfig
    from seapo.profile.run import profile

    config = ProfileConfig(data=str(shared_data / "source" / "gsm8k" / "train.jsonl"), limit=8, chunk_size=4,
                           max_new_tokens=8, policy={"model": str(tiny_model), "dtype": "fp32"})
    local = profile(tmp_path / "local", config)
    on_ray = profile(tmp_path / "ray", config.updated({"ray.address": "auto", "ray.workers": 2}))
    drop = ("wall_time_s",)
    assert {k: v for k, v in on_ray.profile.items() if k not in drop} == \
        {k: v for k, v in local.profile.items() if k not in drop}
    assert (tmp_path / "ray" / "verdicts.jsonl").read_bytes() == (tmp_path / "local" / "verdicts.jsonl").read_bytes()


@needs_ray
@pytest.mark.slow
def test_the_token_budget_is_run_wide_across_the_workers(ray_cluster, records, tmp_path):
    """A served model's token_budget counts every actor's tokens together. Twelve items of one identical prompt
    (so each costs the same c tokens) on two workers, budget 5.5 c: the run stops after at most six (per actor,
    each worker could do six, and the one that starts first takes the first batches: with per-actor budgets
    this run stored 8, against 5 run-wide); a rerun without the budget finishes the rest, nothing repeated."""
    pytest.importorskip("openai", reason="the openai package is not installed (pip install 'seapo[openai]')")
    from seapo.data.schema import Record
    from seapo.errors import BudgetExceeded
    from seapo.models.resolve import embedded_gguf_path
    from tests.backends.openai_server import SERVED_NAME, LlamaServer, llama_cpp_available

    if not llama_cpp_available():
        pytest.skip("llama_cpp (pip install 'llama-cpp-python[server]') is not importable")
    short = min(records, key=lambda r: len(r.question) + len(r.response))
    same = [Record(prompt=short.prompt, response=short.response, source=short.source, id=f"budget-{k}")
            for k in range(12)]
    srv = LlamaServer(embedded_gguf_path(), log=tmp_path / "server.log").start()
    try:
        def config(**backend):
            return InjectConfig(injector="llm", strategy="mixed", error_types=["correctness"], fallback="none",
                                max_attempts=1, judge={"name": "none"}, chunk_size=1,
                                audit={"shortcut_audit": False},
                                llm={"max_new_tokens": 4, "backend": {"name": "openai", "model": SERVED_NAME,
                                                                      "base_url": srv.base_url, **backend}})

        one = inject(same[:1], tmp_path / "one", config())
        cost = sum(c["prompt_tokens"] + c["completion_tokens"] for c in one.summary["token_usage"].values())
        assert cost > 0
        out = tmp_path / "budget"
        ray_config = config(token_budget=int(5.5 * cost)).model_copy(
            update={"ray": RayConfig(address="auto", workers=2)})
        with pytest.raises(BudgetExceeded, match="token budget"):
            inject(same, out, ray_config)
        _assert_the_pool_let_go()  # the stopped run's actors hold no CPU: the rerun below can start its own
        stored = _stored(out)
        assert 1 <= len(stored) <= 6, stored
        again = inject(same, out, config().model_copy(update={"ray": RayConfig(address="auto", workers=2)}))
    finally:
        srv.stop()
    assert again.summary["resumed_items"] == len(stored)
    assert len(_stored(out)) == 12 and all(_stored(out)[k] == s for k, s in stored.items())  # kept, not redone


@needs_ray
@pytest.mark.slow
def test_profile_on_ray_counts_the_served_policys_tokens_and_its_budget_run_wide(ray_cluster, tmp_path):
    """seapo profile on two workers with the policy on a served model: the actors' tokens are summed into
    profile.json, and a token_budget counts them together. Twelve problems of one shape (so each costs
    about the same c tokens), budget 5.5 c: at most six or seven are answered before the run stops (per-actor
    budgets would let each worker answer five or six); a rerun without the budget finishes the rest."""
    pytest.importorskip("openai", reason="the openai package is not installed (pip install 'seapo[openai]')")
    from seapo.errors import BudgetExceeded
    from seapo.models.resolve import embedded_gguf_path
    from seapo.profile.config import ProfileConfig
    from seapo.profile.run import profile
    from tests.backends.openai_server import SERVED_NAME, LlamaServer, llama_cpp_available

    if not llama_cpp_available():
        pytest.skip("llama_cpp (pip install 'llama-cpp-python[server]') is not importable")
    data = tmp_path / "sums.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is 3 + {k}?", "answer": f"3 + {k} = {3 + k}\n#### {3 + k}"})
                            + "\n" for k in range(10, 22)))
    srv = LlamaServer(embedded_gguf_path(), log=tmp_path / "server.log").start()
    try:
        def config(workers: int | None = 2, **policy):
            ray = {"ray.address": "auto", "ray.workers": workers} if workers else {}
            return ProfileConfig(data=str(data), chunk_size=1, max_new_tokens=4, show_progress=False,
                                 policy={"name": "openai", "model": SERVED_NAME, "base_url": srv.base_url,
                                         **policy}).updated(ray)

        one = profile(tmp_path / "one", config(None).updated(limit=1))
        cost = sum(one.profile["token_usage"]["policy"].values())
        assert cost > 0
        out = tmp_path / "budget"
        with pytest.raises(BudgetExceeded, match="token budget"):
            profile(out, config(token_budget=int(5.5 * cost)))
        _assert_the_pool_let_go()
        with sqlite3.connect(out / "profile.sqlite") as db:
            stored = db.execute("SELECT count(*) FROM verdicts").fetchone()[0]
        assert 1 <= stored <= 7, stored
        again = profile(out, config())
    finally:
        srv.stop()
    assert again.profile["resumed_items"] == stored and again.profile["answers"] == 12
    spent = again.profile["token_usage"]["policy"]  # this run's: the items not stored before, from both actors
    assert sum(spent.values()) == pytest.approx((12 - stored) * cost, rel=0.25)
