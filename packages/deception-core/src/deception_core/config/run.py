"""Run configuration: frozen attrs classes, validated, unknown keys refused.

Nothing here imports torch; dtypes and devices are strings resolved when the model loads.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import attrs

from deception_core.base.errors import ConfigError
from deception_core.base.selection import parse_layers, parse_positions
from deception_core.base.types import DEFAULT_POSITIONS, LABEL_POLICIES, JSONObject, Mode, Position
from deception_core.config.slurm import array_shard
from deception_core.config.structuring import check_requires, finite, option
from deception_core.config.structuring import structure as _structure

DTYPES = ("bfloat16", "float16", "float32")
DEVICES = ("auto", "cuda", "mps", "cpu")
#: ``--mode``: one of the `Mode`s, or ``both``
BOTH_MODES = "both"
MODES = (*(m.value for m in Mode), BOTH_MODES)
#: the most trials per scenario per condition (a run plans every trial up front)
MAX_TRIALS = 10_000
#: the share of judge calls `deception relabel` lets fail before it applies nothing (exit 1)
RELABEL_MAX_JUDGE_FAILURES = 0.1
EXECUTORS = ("local", "ray")

C = TypeVar("C", bound=attrs.AttrsInstance)


def _positive(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ConfigError(f"{attribute.name} must be at least 1, got {value}")


def _batch_size(value: Any) -> int | str:
    """``auto`` or a whole number from 1 to 4096 (given as a number or a string)."""
    if value == "auto":
        return "auto"
    try:
        number = int(value) if not isinstance(value, (bool, float)) else None
    except (TypeError, ValueError):
        number = None
    if number is None or not 1 <= number <= 4096:
        raise ConfigError(f"batch_size must be between 1 and 4096 (or 'auto'), got {value!r}")
    return number


def _between(low: int, high: int) -> Callable[[object, attrs.Attribute[int], int], None]:
    def check(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
        if not low <= value <= high:
            raise ConfigError(f"{attribute.name} must be between {low} and {high}, got {value}")

    return check


def _layers(value: str | Sequence[int] | None) -> tuple[int, ...] | None:
    return parse_layers(value)


def _positions(value: str | Sequence[str | Position]) -> tuple[Position, ...]:
    return parse_positions(value)


def _shard(value: object) -> tuple[int, int] | None:
    if value is None:
        return None
    if value == "auto":
        return array_shard()
    if isinstance(value, str):
        first, sep, second = value.partition("/")
        try:
            value = (int(first), int(second)) if sep else None
        except ValueError:
            value = None
        if value is None:
            raise ConfigError("--shard takes I/N with 0 <= I < N, for example 0/4, or auto (a Slurm array task)")
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ConfigError(f"shard must be I/N, auto, or a pair of integers [I, N]; got {value!r}")
    index, total = (int(v) for v in value)
    if not (total >= 1 and 0 <= index < total):
        raise ConfigError(f"--shard needs 0 <= I < N; got {index}/{total}")
    return (index, total)


COMPONENT_KINDS = ("evaluator", "analysis", "causal_test", "scenario", "capture_backend", "sae", "engine")
#: settings that were RunConfig fields and are now their component's (`RunConfig.from_dict` names the new place)
MOVED_KEYS = {
    "judge_model": "components={'evaluator': {EVALUATOR: {'model': ...}}}",
    "judge_url": "components={'evaluator': {EVALUATOR: {'base_url': ...}}}",
    "sae": "components={'sae': {'sae-lens': {}}}",
    "sae_layer": "components={'sae': {'sae-lens': {'layer': ...}}}",
    "sae_release": "components={'sae': {'sae-lens': {'release': ...}}}",
    "sae_id": "components={'sae': {'sae-lens': {'id': ...}}}",
    "sae_path": "components={'sae': {'sae-lens': {'path': ...}}}",
    "causal_samples": "components={'causal_test': {TEST: {'samples': ...}}} for each causal test",
}


def _components(value: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """``{kind: {component name: {parameter: value}}}``, the settings route of every component."""
    value = dict(value or {})
    unknown = sorted(set(value) - set(COMPONENT_KINDS))
    if unknown:
        raise ConfigError(f"components: unknown kind(s) {unknown}; valid kinds: {', '.join(COMPONENT_KINDS)}")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for kind, by_name in value.items():
        if not isinstance(by_name, Mapping) or not all(isinstance(p, Mapping) for p in by_name.values()):
            raise ConfigError(f"components.{kind} maps component names to parameter objects, e.g. "
                              '{"together": {"model": "..."}}')
        out[kind] = {str(name): dict(params) for name, params in by_name.items()}
    return out


def _names(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"scenario_names must be a list of scenario names; got {value!r}")
    return tuple(dict.fromkeys(value))


@attrs.frozen(kw_only=True)
class RunConfig:
    """Everything a `deception run` needs. Field names follow the command-line flags.

    This class is the one source of the flags' defaults, types, ranges and help texts:
    `deception_core.cli.options` derives `deception run`'s options from the fields declared with
    `option`. A new option is one field here.
    """

    model: str = option("google/gemma-2b-it", short="-m",
                        help="Hugging Face id, local directory, or embedded:gemma-3-270m / embedded:smollm2-135m.")
    revision: str | None = option(None, help="Hub revision (branch, tag or commit) of --model.")
    device: str = option("auto", short="-d", choices=DEVICES, help="Where the model runs; auto: CUDA when present.")
    dtype: str = option("bfloat16", choices=DTYPES, help="Model precision; CPU falls back to float32 with a notice.")
    mode: str = option("emergent", choices=MODES,
                       help="emergent: lying pays but is never asked for; instructed: the agent is told; both.")
    scenarios: int = option(3, help="Run the first N registered scenarios (1-6 built in).")
    scenario_names: tuple[str, ...] = option((), converter=_names, name="--scenario-name", multiple=True,
                                             help="Run this scenario (repeatable); overrides --scenarios.")
    trials: int = option(40, short="-t", validator=_between(1, MAX_TRIALS), help="Trials per scenario per condition.")
    max_rounds: int = option(3, validator=_between(1, 1000), help="Talk rounds per trial (one focal utterance each).")
    max_tokens: int = option(128, validator=_between(1, 1_000_000), help="Maximum tokens per reply.")
    fast: bool = option(False, help="Turn the theory-of-mind step off.")
    ultrafast: bool = option(False, help="One generation call per round: minimal agents, scripted counterpart, "
                                         "no theory of mind.")
    self_report: bool = option(False, help="After each move ask the agent whether it matched its private facts "
                                           "(recorded per sample).")
    hybrid: bool = option(False, help="HF generation, then one TransformerLens forward (capture backend 'hybrid').")
    capture_backend: str | None = option(None, help="Capture backend by name (hf, transformer-lens, hybrid, ...).")
    engine: str = option("hf", help="What generates the replies: hf (the in-process model, default) or openai "
                                    "(an OpenAI-compatible server at --engine-url; captured calls are replayed "
                                    "through the in-process model).")
    engine_url: str | None = option(None, help="The --engine's server, e.g. http://127.0.0.1:8000 (vLLM, SGLang, "
                                               "TGI, transformers serve).")
    counterpart_engine: str | None = option(
        None, help="Base URL of another OpenAI-compatible server whose model plays the counterpart (its chat "
                   "route and template; never captured); recorded in the checkpoint identity.")
    counterpart_model: str | None = option(None, requires="counterpart_engine",
                                           help="The counterpart's model name on --counterpart-engine.")
    layers: tuple[int, ...] | None = option(None, converter=_layers,
                                            help="Comma-separated layers to capture; default: spread over the depth.")
    positions: tuple[Position, ...] = option(DEFAULT_POSITIONS, converter=_positions,
                                             help="Positions to record; add reply_all to keep every reply token.")
    causal: bool = option(False, help="Run the causal tests after the probes.")
    evaluator: str = option("local", help="Judge: local, together or google.")
    #: ``{kind: {component name: {parameter: value}}}``: each component's own settings (the plugins'
    #: flags, such as --judge-model, --sae-layer or --causal-samples, are mapped in here)
    components: dict[str, dict[str, dict[str, Any]]] = attrs.field(factory=dict, converter=_components)
    label_policy: str = option("agree", choices=LABEL_POLICIES,
                               help="agree: rule label only when the judge agrees, else ambiguous (where no rule can check: the "
                                    "judge's); rule: the rule decides.")
    output: str = option("./experiment_output", short="-o",
                         help="The run's folder; must be new or empty unless resuming the same run (or --overwrite).")
    overwrite: bool = option(False, help="Replace the earlier run in a non-empty --output (its files are deleted).")
    checkpoint_dir: str | None = option(
        None, help="Save each finished trial here; re-running resumes (default: <output>/checkpoint).")
    verbose: bool = option(False, short="-v", help="Debug-level logging (console and run.log).")
    seed: int = option(0, validator=_between(0, 2**63 - 1), help="Seeds the trials' facts and every sampled reply.")
    shard: tuple[int, int] | None = option(
        None, converter=_shard, help="Play only shard I of N (I/N), for many pods; auto: this Slurm array task's shard.")
    batch_size: int | str = option(
        "auto", converter=_batch_size,
        help="Generation calls per batch, pooled across every trial in flight; auto: from free GPU "
             "memory, or the CPU size the pipeline benchmark found fastest.")
    temperature: float = option(0.7, validator=finite, help="0 for greedy decoding.")
    top_p: float = option(0.9, validator=finite, help="Nucleus sampling: sample from the smallest set of tokens "
                                                          "holding this probability.")
    jobs: int | None = option(None, validator=attrs.validators.optional(_positive),
                              help="Processes for the probe analysis (default: every core, one for small data); "
                                   "results do not depend on it.")
    analyze: bool = option(True, name="--no-analyze", invert=True,
                           help="Write the dataset only; run `deception analyze` later.")
    report: bool = option(True, name="--no-report", invert=True,
                          help="Do not write report.html; run `deception report` later.")
    executor: str = option("local", choices=EXECUTORS,
                           help="local: play trials in this process; ray: on Ray workers, one model copy each.")
    ray_address: str | None = option(
        None, requires="executor=ray", help="Ray cluster to join (e.g. auto, or HEAD:6379); default: start a local Ray instance.")
    workers: int | None = option(None, validator=attrs.validators.optional(_positive), requires="executor=ray",
                                 help="Ray workers (default: one per GPU in the Ray cluster, else one on CPU).")

    def __attrs_post_init__(self) -> None:
        if self.executor != "ray" and (self.ray_address or self.workers):
            raise ConfigError("--ray-address and --workers take effect only with --executor ray; add --executor ray")
        check_requires(self)
        if self.temperature < 0:
            raise ConfigError(f"temperature must be 0 (greedy) or more; got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1]; got {self.top_p}")
        if self.engine == "hf" and self.engine_url:
            raise ConfigError("--engine-url names the server of an engine other than hf; add --engine openai "
                              "(or drop --engine-url)")
        if self.engine != "hf" and not self.engine_url:
            raise ConfigError(f"--engine {self.engine} needs --engine-url, the server's base URL "
                              "(for example http://127.0.0.1:8000)")
        if self.engine != "hf" and (self.hybrid or self.capture_backend not in (None, "hf")):
            raise ConfigError(f"--engine {self.engine} replays the replies through the hf capture backend; drop "
                              "--hybrid / --capture-backend, or use --engine hf")
        if self.hybrid and self.capture_backend not in (None, "hybrid"):
            raise ConfigError(
                f"--hybrid selects the 'hybrid' capture backend but --capture-backend is "
                f"{self.capture_backend!r}; drop one of the two"
            )

    @property
    def modes(self) -> tuple[str, ...]:
        return ("emergent", "instructed") if self.mode == "both" else (self.mode,)

    def component_params(self, kind: str, name: str) -> dict[str, Any]:
        """The parameters given for one component."""
        return dict(self.components.get(kind, {}).get(name, {}))

    @property
    def backend_name(self) -> str | None:
        return "hybrid" if self.hybrid else self.capture_backend

    def to_dict(self) -> JSONObject:
        plain: JSONObject = to_jsonable(self)
        return plain

    @classmethod
    def from_dict(cls, data: Mapping[str, object], *, source: str = "", given: Collection[str] = ()) -> RunConfig:
        """``given``: the keys the user set explicitly; an option that needs another (--workers needs
        --executor ray) is refused when given, even at its default value. A key that moved into a
        component's settings (``judge_model``, ``sae_layer``, ...) is refused naming its new place;
        `deception run` still takes it as a flag or a ``--config`` key
        (`deception_core.config.plugin_options`)."""
        moved = sorted(key for key in data if key in MOVED_KEYS) if isinstance(data, Mapping) else []
        if moved:
            where = f" in {source}" if source else ""
            raise ConfigError(
                f"RunConfig key(s) {', '.join(moved)}{where} moved into the components' settings: pass "
                + "; ".join(f"{key} as {MOVED_KEYS[key]}" for key in moved)
                + " (`deception run` still takes them as flags and --config keys)"
            )
        return structure(cls, data, source=source, given=given)

    @classmethod
    def from_file(cls, path: str | Path) -> RunConfig:
        """A config file: JSON, or YAML (``.yaml``/``.yml``); a run's ``config.json`` is accepted too."""
        data, given = cls.file_values(path)
        return cls.from_dict(data, source=str(path), given=given)

    @classmethod
    def file_values(cls, path: str | Path) -> tuple[dict[str, object], tuple[str, ...]]:
        """The values a config file holds, and the keys its author wrote (none for a run's own
        ``config.json``, which lists every key with its resolved value)."""
        data = read_config_file(path)
        recorded = data.get("config")
        if isinstance(recorded, dict) and "resolved" in data:
            # the config.json a run writes; its --overwrite was a decision for that run, not for this one
            return {k: v for k, v in recorded.items() if k != "overwrite"}, ()
        return data, tuple(data)


def read_config_file(path: str | Path) -> dict[str, object]:
    """The plain data in a JSON or YAML config file; `ConfigError` (with the fix) when it cannot be read."""
    path = Path(path)
    where = f"--config {path}"
    if not path.exists():
        raise ConfigError(f"{where}: no such file; check the path")
    if not path.is_file():
        raise ConfigError(f"{where} is not a file; pass a JSON or YAML config file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{where} cannot be read ({error.strerror}); check its permissions") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{where} is not a text file (not UTF-8); pass a JSON or YAML config file") from None
    if not text.strip():
        raise ConfigError(f"{where} is empty; write the options as a JSON object such as {{\"trials\": 2}}")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError(f"{where} is not valid YAML ({str(error).splitlines()[0]}); fix the file") from None
    else:
        try:
            data = json.loads(text, parse_constant=_refuse_constant)
        except json.JSONDecodeError as error:
            hint = " (YAML files need the .yaml or .yml suffix)" if path.suffix.lower() != ".json" else ""
            raise ConfigError(f"{where} is not valid JSON ({error}){hint}; fix the file") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where} must hold a mapping of option names to values, such as {{\"trials\": 2}}; "
            f"it holds a {type(data).__name__}"
        )
    return data


def _refuse_constant(name: str) -> NoReturn:
    raise ConfigError(f"--config: {name} is not a number a config may hold; give a finite number")


def structure(cls: type[C], data: Mapping[str, object], *, source: str = "", given: Collection[str] = ()) -> C:
    """Build an attrs config from a mapping: types and ranges checked, unknown keys refused (see `structuring`)."""
    return _structure(cls, data, source=source, given=given)


def to_jsonable(value: Any) -> Any:
    """attrs instances, enums, tuples and paths as plain JSON values."""
    if attrs.has(type(value)):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "value") and hasattr(type(value), "__members__"):
        return value.value
    if isinstance(value, Path):
        return str(value)
    return value
