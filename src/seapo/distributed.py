"""Run a stage's chunks on Ray Data (``seapo inject --ray ADDRESS``): one actor pool, results
streamed back to the driver.

The driver turns the work that is not yet in its resume store into a Ray Dataset of JSON rows;
``map_batches`` sends batches of them to a fixed pool of actors, each of which builds its worker
once (an injector and its backend, loaded once per actor) and maps every batch it gets; the
driver iterates the results as they finish (``iter_batches``) and commits each batch to its store.
Scheduling, retries and restarts are Ray Data's: an actor that dies is restarted and its batch
is retried (``max_restarts=-1``, ``max_task_retries=-1``, Ray Data's defaults for actor pools),
and what the driver already stored is never sent again (docs/ray.md).

Ray is an optional dependency (``pip install 'seapo[ray]'``), imported only when a run asks for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pydantic import Field, model_validator

from seapo.config import SeapoConfig
from seapo.errors import BudgetExceeded, ConfigError

Worker = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
"""Maps one batch of flat rows to its output rows (any number of them; see :func:`map_batches`)."""


class RayConfig(SeapoConfig):
    """Where and how a stage runs on Ray Data; ``address`` unset (the default) runs it in-process."""

    address: str | None = Field(None, description="Run on Ray Data: 'local' (a one-machine Ray started for this "
                                "run and stopped after it), 'auto' (the cluster this machine joined with `ray "
                                "start`), or a cluster address (HOST:6379, ray://HOST:10001). Unset: no Ray. A "
                                "process that has already called ray.init() uses its own connection.",
                                json_schema_extra={"show_default": "none (no Ray)"})
    workers: int | None = Field(None, ge=1, description="Actors in the pool; each builds and loads its injector, "
                                "judge and backend once. Default: as many as the cluster's CPUs (its GPUs when "
                                "gpus_per_worker > 0) hold.")
    cpus_per_worker: float = Field(1.0, ge=0.0, description="CPUs Ray reserves for each actor.")
    gpus_per_worker: float = Field(0.0, ge=0.0, description="GPUs Ray reserves for each actor (a transformers or "
                                   "vLLM-served model on GPU: 1; fractions share a GPU).")
    resources: dict[str, float] = Field(default_factory=dict, description="Custom Ray resources each actor needs "
                                        "(e.g. {vllm: 1} with `ray start --resources '{\"vllm\": 1}'` on each node "
                                        "that serves a model: one actor per serving node).")
    runtime_env: dict[str, Any] = Field(default_factory=dict, description="Ray runtime_env of the job (pip, "
                                        "env_vars, working_dir, ...): what the worker nodes need and lack. "
                                        "Ignored when the process already called ray.init().")

    @model_validator(mode="before")
    @classmethod
    def _address_alone(cls, data: Any) -> Any:
        # `ray: auto` in YAML (or --set inject.ray=auto) names the address alone.
        return {"address": data} if isinstance(data, str) else data

    @property
    def enabled(self) -> bool:
        return self.address is not None


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data is a separate extra of ray
    except ImportError as exc:
        raise ConfigError(f"--ray needs Ray Data ({exc}): pip install 'seapo[ray]' (ray[data]>=2.9)",
                          field="ray.address") from None
    return ray


def connect(config: RayConfig) -> bool:
    """Connect to (or, for ``local``, start) Ray; True when this call started the connection (and so
    must :func:`disconnect` it), False when the process was already connected."""
    ray = _import_ray()
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {}
    if config.runtime_env:
        kwargs["runtime_env"] = config.runtime_env
    if config.address == "local":  # private to this machine, nothing listening beyond it
        ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, **kwargs)
    else:
        ray.init(address=config.address, **kwargs)
    return True


def disconnect(started: bool) -> None:
    if started:
        import ray

        ray.shutdown()


def pool_size(config: RayConfig) -> int:
    """``workers``, or as many actors as the cluster's resources hold (the scarcest one they need
    decides; at least one)."""
    if config.workers is not None:
        return config.workers
    import ray

    have = ray.cluster_resources()
    need = {"CPU": config.cpus_per_worker, "GPU": config.gpus_per_worker, **config.resources}
    fits = [int(have.get(name, 0) // amount) for name, amount in need.items() if amount > 0]
    return max(1, min(fits, default=1))


class _Actor:
    """The map_batches class: builds its worker once (in the actor), then maps each batch. It tells
    the run's :class:`PoolRegistry` its own handle, so the driver can stop it (:func:`map_batches`)."""

    def __init__(self, make_worker: Callable[[], Worker], registry: Any = None) -> None:
        if registry is not None:
            import ray

            ray.get(registry.add.remote(ray.get_runtime_context().current_actor))
        self.worker = make_worker()

    def __call__(self, batch: Any) -> dict[str, list[Any]]:
        out = self.worker(batch.to_pylist())
        return {key: [row[key] for row in out] for key in (out[0] if out else {})}


def map_batches(rows: Sequence[dict[str, Any]], make_worker: Callable[[], Worker], config: RayConfig,
                batch_size: int, *, show_progress: bool = False) -> Iterator[list[dict[str, Any]]]:
    """Map ``rows`` on a pool of actors, ``batch_size`` rows per call; yields the output rows as the
    batches finish, in no particular order.

    Rows in and out are flat: every row of a batch has the same keys, each value a str, int,
    float, bool or None (nested data travels as JSON text), so Arrow carries the columns without
    a schema to guess. ``make_worker`` (pickled to every actor) runs once per actor and returns the
    function that maps a batch. The caller must already be connected (:func:`connect`). Stopping
    the iteration (an exception in the caller) stops the dataset's execution.
    """
    import ray

    from seapo.progress import console

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = show_progress  # the stage shows its own bar
    context.print_on_execution_start = False
    if hasattr(context, "raise_original_map_exception"):  # Ray >= 2.4x: else a worker's error arrives as text only
        context.raise_original_map_exception = True
    size = pool_size(config)
    if not rows:
        return
    dataset = ray.data.from_items(list(rows), override_num_blocks=-(-len(rows) // batch_size))  # a block a batch
    registry = ray.remote(num_cpus=0)(PoolRegistry).remote()
    mapped = dataset.map_batches(
        _Actor, fn_constructor_args=(make_worker, registry), batch_size=batch_size, batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=size), num_cpus=config.cpus_per_worker,
        num_gpus=config.gpus_per_worker or None, resources=config.resources or None)
    console.print(f"[dim]ray: {len(rows)} items on {size} worker(s), {batch_size} per batch[/]", highlight=False)
    try:
        for batch in mapped.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=0):
            yield batch.to_pylist()
    except BaseException:
        # A failed or abandoned dataset releases its actors only by dropping references (Ray Data does
        # not kill them), and the error's traceback keeps references alive: its actors would go on
        # holding the cluster's CPUs, and the next run in this process (a rerun after a spent token
        # budget) would wait for them forever. Stop them.
        for actor in ray.get(registry.handles.remote()):
            ray.kill(actor, no_restart=True)
        raise
    finally:
        ray.kill(registry)


class PoolRegistry:
    """The handles of one :func:`map_batches` call's actors (a Ray actor needing no CPU), so the driver
    can stop them when the run fails or stops early."""

    def __init__(self) -> None:
        self.actors: list[Any] = []

    def add(self, actor: Any) -> None:
        self.actors.append(actor)

    def handles(self) -> list[Any]:
        return self.actors


class TokenLedger:
    """The tokens a run's actors have spent, summed: the one count a run-wide ``token_budget`` is
    checked against. The driver makes it a Ray actor (:func:`token_ledger`); each worker adds what
    its batch spent and reads the total before its next batch."""

    def __init__(self) -> None:
        self.total = 0

    def add(self, tokens: int) -> int:
        self.total += tokens
        return self.total

    def spent(self) -> int:
        return self.total


def token_ledger() -> Any:
    """A :class:`TokenLedger` actor on the connected cluster (it needs no CPU of its own)."""
    import ray

    return ray.remote(num_cpus=0)(TokenLedger).remote()


class RunWideBudget:
    """One actor's side of a run-wide ``token_budget``: a served backend (``usage_elsewhere``,
    ``config.token_budget``) and the run's :class:`TokenLedger` actor. Before a batch, :meth:`check`
    tells the backend what the other actors have spent (it checks the sum before every request) and
    refuses the batch once the budget is spent; after it, :meth:`report` adds what it spent."""

    def __init__(self, ledger: Any, backend: Any) -> None:
        self.ledger, self.backend = ledger, backend
        self.budget: int = backend.config.token_budget
        self.reported = 0  # this actor's tokens already added to the ledger

    def check(self, own: int) -> None:
        """``own``: the tokens this actor has spent so far in this run."""
        import ray

        self.backend.usage_elsewhere = max(0, ray.get(self.ledger.spent.remote()) - self.reported)
        if self.backend.usage_elsewhere + own >= self.budget:
            raise BudgetExceeded(f"the token budget of {self.budget} tokens is spent by the run's workers together "
                                 f"({self.backend.usage_elsewhere + own} tokens)")

    def report(self, tokens: int) -> None:
        import ray

        ray.get(self.ledger.add.remote(tokens))
        self.reported += tokens


def stopped_by_budget(spent: int, budget: int | None, workers: int) -> None:
    """On the driver, after a batch came back: once the workers together have spent ``budget``, no
    further batch is taken (the ones in flight are dropped unstored, as a local run drops its chunk
    in flight)."""
    if budget is not None and spent >= budget:
        raise BudgetExceeded(f"the token budget of {budget} tokens is spent by the run's {workers} workers "
                             f"together ({spent} tokens)")


def budget_message(exc: BaseException, stored: int, store_path: Any) -> BudgetExceeded:
    """The error a stopped run ends with: what stopped it, what is kept, how to continue."""
    return BudgetExceeded(f"{exc}. {stored} items are stored in {store_path}; rerun the same command (a larger "
                          "token_budget, or none) to continue from them")


def root_cause(exc: BaseException, cls: type[BaseException]) -> BaseException | None:
    """The ``cls`` exception a Ray error wraps (a worker's exception reaches the driver inside
    Ray's own), or None."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, cls) and not isinstance(getattr(current, "cause", None), cls):
            return current  # the original, not Ray's wrapper that also derives from its class
        stack += [current.__cause__, current.__context__, getattr(current, "cause", None)]
    return None


def reraise_seapo_error(exc: BaseException) -> None:
    """Raise the :class:`~seapo.errors.SeapoError` a worker raised (a model not found, a spent token
    budget), unwrapped from Ray's errors, so it keeps its message and exit code; else return."""
    from seapo.errors import SeapoError

    cause = root_cause(exc, SeapoError)
    if cause is not None and cause is not exc:
        if cause.args and isinstance(cause.args[0], str):  # Ray Data appends its retry note to the message
            cause.args = (cause.args[0].split("\nFailed to apply UDF transform")[0], *cause.args[1:])
        raise cause from None
