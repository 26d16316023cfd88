"""One typed settings object.

Precedence: command-line flags > environment ``KB_*`` > ``kb.yaml`` > defaults. Nested keys map
to env with one underscore after the section: ``llm.base_url`` <- ``KB_LLM_BASE_URL``.
Secrets (API keys, hub tokens) come from the environment only: kb.yaml names the *variable*
(``llm.api_key_env``), never the value, so a knowledge repository can be public.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from pipeline import safeload
from pipeline.errors import ConfigError, InputError, InputLimitError
from pipeline.textio import read_utf8


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CheckSettings(_Section):
    min_words: int = Field(400, description="Below this body length: a warning.")
    max_words: int = Field(800, description="Above this body length: a warning.")
    hard_cap_words: int = Field(1500, description="Above this body length: an error.")
    duplicate_threshold: float = Field(90.0, description="rapidfuzz score (0-100) for near-duplicates.")
    duplicates: bool = Field(True, description="Run near-duplicate detection.")
    related_threshold: float = Field(60.0, description="Minimum score to suggest a related title.")
    verify_quotes: bool = Field(True, description="Re-verify interview quotes against transcripts.")


class AsrSettings(_Section):
    backend: Literal["faster-whisper", "whisperx"] = "faster-whisper"
    model: str = Field("large-v3", description="Model name or local CTranslate2 model directory.")
    device: str = "cpu"
    compute_type: str = "int8"
    vad: bool = True
    batch_size: int = Field(0, description="faster-whisper BatchedInferencePipeline when > 0.")
    beam_size: int = 5
    word_timestamps: bool = True
    language: str | None = Field(None, description="Force a language; default: interview.yaml's.")
    align_model: str | None = Field(None, description="whisperX: local alignment model directory.")
    download_root: str | None = Field(None, description="Model cache searched for model names (never downloads).")
    temperature: float | None = Field(None, description="Fixed decoding temperature; unset = fallback 0.0..1.0.")
    max_new_tokens: int | None = Field(None, description="Cap on tokens decoded per 30 s window.")
    condition_on_previous_text: bool = True
    vocabulary_hint: Literal["hotwords", "initial_prompt", "both", "off"] = Field(
        "hotwords", description="How interview.yaml's vocabulary is hinted to the model."
    )


class DiariseSettings(_Section):
    backend: Literal["auto", "pyannote", "channels", "none"] = "auto"
    pipeline: str | None = Field(None, description="Local pyannote pipeline directory or config.yaml.")
    token_env: str = Field("HF_TOKEN", description="Env var holding a hub token (secret).")
    smoothing_s: float = Field(0.5, description="Turn-boundary smoothing window, seconds.")
    hub_pipeline: str = Field(
        "pyannote/speaker-diarization-community-1", description="Hub pipeline used with a token (network)."
    )
    channel_bleed_db: float = Field(25.0, description="channels: quieter than the loudest by this = crosstalk.")


class LlmSettings(_Section):
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1")
    model: str = "gpt-4o-mini"
    provider: str = Field("openai", description="instructor provider; 'openai' covers compatible servers.")
    api_key_env: str = Field("KB_LLM_API_KEY", description="Env var holding the API key (secret).")
    api_key: SecretStr | None = Field(
        None, description="Filled only from the environment (KB_LLM_API_KEY); never from kb.yaml; shown masked."
    )
    temperature: float = 0.0
    max_retries: int = Field(2, description="instructor re-asks on validation errors.")
    http_retries: int = Field(4, description="Retries on 429/5xx/timeouts, with backoff.")
    context_window: int = 100_000
    timeout_s: float = 120.0
    price_in_per_1m: float = 0.25
    price_out_per_1m: float = 0.25
    max_output_tokens: int = Field(4096, description="Cap on tokens the model may write per request.")
    backoff_s: float = Field(0.5, description="First retry delay (doubles per retry); Retry-After wins.")
    backoff_max_s: float = Field(8.0, description="Longest retry delay.")
    mode: Literal["tools", "json", "json_schema", "md_json"] = Field(
        "tools", description="instructor mode: tools (function calling) or JSON for servers without tools."
    )


class AgentSettings(_Section):
    """The bounded tool loops (kb ops ask, kb agent, chat models kb-ops / kb-agent)."""

    max_tool_calls: int = Field(8, ge=0, le=50, description="Tool calls per request; then the model must answer.")
    max_requests: int = Field(10, ge=1, le=50, description="LLM requests per loop (tool rounds + the answer).")
    tool_output_tokens: int = Field(1500, ge=50, description="Budget per tool output sent to the model (cut, said).")
    max_cost_usd: float | None = Field(0.25, description="Stop before one request's loop could exceed this.")
    redact: bool = Field(True, description="Redact secrets, tokens, emails and IPs before anything reaches the LLM.")
    redact_emails: bool = True
    redact_ips: bool = True
    redact_patterns: list[str] = Field(
        default_factory=list, description="Extra regexes to redact (a named group 'keep' is kept, e.g. a key name)."
    )


class DistillSettings(_Section):
    backend: Literal["auto", "llm", "extractive"] = "auto"
    quote_threshold: float = Field(90.0, description="rapidfuzz partial_ratio a quote must reach.")
    quote_slack_s: float = Field(5.0, description="Seconds a cited range may be off and still verify.")
    window_tokens: int = Field(12000, description="Transcript tokens per LLM window (capped by the context window).")
    window_overlap_turns: int = 2
    max_cost_usd: float | None = None
    merge_threshold: float = Field(85.0, description="rapidfuzz title score to merge items into one atom.")
    topic_threshold: float = Field(55.0, description="extractive: rapidfuzz score to group Q/A pairs by topic.")
    pairs_per_atom: int = Field(6, description="extractive: most FAQ pairs in one atom.")
    answer_max_words: int = Field(180, description="extractive: longest answer kept whole (longer ones are cut).")


class EmbedSettings(_Section):
    backend: Literal["sentence-transformers", "onnx"] = "sentence-transformers"
    model: str = Field("all-MiniLM-L6-v2", description="Model name or local path.")
    batch_size: int = 64


class ServeSettings(_Section):
    host: str = "127.0.0.1"
    port: int = 8000
    api_key_env: str = Field("KB_SERVE_API_KEY", description="Env var with the bearer key; unset = open.")
    api_key: SecretStr | None = Field(
        None, description="Filled only from the environment (KB_SERVE_API_KEY); never from kb.yaml; shown masked."
    )
    max_body_bytes: int = 65_536
    max_query_chars: int = 2_000
    # slow or stalled clients (issue 17): bounded time per request phase, bounded header bytes
    header_timeout_s: float = Field(
        10.0, gt=0, description="A request's headers must arrive within this many seconds of its first byte (408)."
    )
    body_timeout_s: float = Field(
        30.0, gt=0, description="A request's whole body must arrive within this many seconds of its headers (408)."
    )
    max_header_bytes: int = Field(16_384, ge=1024, description="Request line + headers larger than this get 431.")
    max_connections: int = Field(
        1000,
        ge=1,
        description="Open connections per serving process; one more gets a JSON 503 with Retry-After (keep it "
        "below the open-file limit, ulimit -n).",
    )
    log_file: str = Field(
        "auto",
        description="kb serve's own log (rotated): auto = <workspace>/.kb/logs/serve.log, where `kb ops ask` on "
        "system kb reads it; a path; or off.",
    )
    uncertain_below: float | None = Field(
        None,
        description="Override the calibrated answerability threshold (on the reranker's 0-1 scale when "
        "serve.reranker is set).",
    )
    reranker: str | None = Field(
        None,
        description="A local relevance cross-encoder directory (sentence-transformers CrossEncoder, one output, e.g. "
        "cross-encoder/ms-marco-MiniLM-L-6-v2 saved there): it reorders the top rerank_depth atoms and its "
        "probability, calibrated on the bundle, decides answerability. Unset = the offline signals alone.",
    )
    rerank_backend: str = Field("cross-encoder", description="The reranker backend (the rerank registry kind).")
    calibration_cache: bool = Field(
        True,
        description="Keep each bundle file's calibrated threshold under $KB_CACHE_DIR/calibration (default "
        "~/.cache/kb), keyed by its checksum, the answering code and the models, so kb ask does not measure "
        "it again on every run.",
    )
    rerank_depth: int = Field(
        5,
        ge=1,
        le=100,
        description="Atoms the reranker reads per question (each costs a model pass: about 60 ms for a "
        "MiniLM-L6 cross-encoder on one CPU thread).",
    )
    llm_judge_band: float = Field(
        0.3,
        ge=0,
        description="With an LLM configured, a question scoring less than this below the answerability threshold "
        "(and naming nothing the knowledge base lacks) is given to the model with its atoms: it answers with "
        "citations or says it doesn't know. 0 = the offline verdict alone decides.",
    )
    site_url: str | None = Field(
        None, description="URL of the review site (kb site): citations link to the atom page and the transcript moment."
    )
    # speed (issue 16): query encoder, query cache, micro-batching, dense index
    encoder: Literal["auto", "onnx", "onnx-int8", "sentence-transformers"] = Field(
        "auto",
        description="Query encoder of kb serve, kb ask/chat/eval and the tools: auto = onnx when onnxruntime is "
        "installed (no torch), else embed.backend.",
    )
    query_cache: int = Field(1024, ge=0, description="Query vectors kept (LRU); 0 = off.")
    batch_window_ms: float = Field(
        2.0, ge=0, description="Concurrent queries arriving within this window share one encoder call."
    )
    batch_max: int = Field(32, ge=1, description="Most queries in one micro-batch.")
    encoder_chunk: int = Field(
        4,
        ge=1,
        description="Queries per onnx run inside a micro-batch (bench/speed_bench.py: MiniLM on 2 cores runs "
        "4 at a time 1.9x faster than 32, which fall out of cache).",
    )
    dense: Literal["auto", "exact", "hnsw", "int8"] = Field(
        "auto", description="Dense search: auto = exact below dense_auto_threshold passages, hnsw above."
    )
    dense_auto_threshold: int = Field(200_000, ge=0, description="Passages from which auto uses HNSW.")
    hnsw_m: int = Field(32, ge=2)
    hnsw_ef_construction: int = Field(100, ge=8)
    hnsw_ef_search: int = Field(64, ge=1)
    min_recall: float = Field(
        0.99, ge=0, le=1, description="An approximate index below this recall@10 vs exact is refused."
    )
    background_load: bool = Field(
        False,
        description="Listen at once and load the bundle in a thread: /healthz answers, /readyz is 503 until loaded "
        "(containers; KB_SERVE_BACKGROUND_LOAD=true).",
    )


class IndexSettings(_Section):
    url: str | None = Field(
        None,
        description="A postgresql:// URL to serve and evaluate from Postgres + pgvector instead of the bundle "
        "(KB_INDEX_URL; the password only from the environment: PGPASSWORD or the URL in KB_INDEX_URL).",
    )
    schema_name: str = Field("kb", description="The Postgres schema that holds the index.")


class SiteSettings(_Section):
    repo_url: str | None = Field(None, description="Repository URL: atom pages get an 'Edit this atom' link.")
    edit_uri: str = Field("edit/main/", description="Path from repo_url to a file's edit page, before its path.")
    media: Literal["copy", "link", "none"] = Field(
        "copy", description="Recordings in the site: copy them, symlink them (big files), or leave them out."
    )

    @field_validator("repo_url", "edit_uri")
    @classmethod
    def _web_url(cls, value: str | None) -> str | None:
        """Only http(s) or relative URLs: a ``javascript:`` or ``data:`` link would run in readers' browsers."""
        if value is None:
            return value
        if any(ord(c) < 32 or c in '<>"\\' for c in value):
            raise ValueError("must be a plain URL (no control characters, quotes or angle brackets)")
        scheme = re.match(r"\s*([A-Za-z][A-Za-z0-9+.-]*):", value)
        if scheme and scheme.group(1).lower() not in ("http", "https"):
            raise ValueError(f"only http(s) or relative URLs are allowed, not '{scheme.group(1)}:'")
        if value.strip().startswith("//"):
            raise ValueError("write the scheme (https://...), not a protocol-relative '//' URL")
        return value


class LimitsSettings(_Section):
    """Input budgets: what kb reads from files it did not write (hostile or broken input stays bounded)."""

    max_atom_bytes: int = Field(
        1_000_000, ge=1, description="Largest atom file; check flags it, export and site refuse it."
    )
    max_transcript_bytes: int = Field(
        32 * 1024 * 1024, ge=1, description="Largest transcript file kb add/transcribe import."
    )
    max_cues: int = Field(100_000, ge=1, description="Most cues in one VTT/SRT file (or turns in a text transcript).")
    max_segments: int = Field(100_000, ge=1, description="Most segments in one whisper/whisperX JSON transcript.")
    max_words: int = Field(1_000_000, ge=1, description="Most timed words in one JSON transcript.")


def over_budget(what: str, value: int, setting: str, limit: int, *, path: Any = None) -> InputLimitError:
    """The one message for an input over a budget: it names the setting that allows more."""
    return InputLimitError(
        f"{what} ({value:,}) is over the limit {setting} = {limit:,}",
        f"Split the input, or raise '{setting}' in kb.yaml (or KB_{setting.replace('.', '_').upper()}) "
        "if you trust it.",
        path=path,
    )


class GapsSettings(_Section):
    record: bool = Field(True, description="kb serve records questions it answered uncertain (no user identity).")
    max_rows: int = Field(
        5000,
        ge=1,
        description="Most gaps kept in .kb/gaps.duckdb or the Postgres index (closed, then oldest, go first).",
    )
    repeat_threshold: float = Field(80.0, description="rapidfuzz score at which two users' questions count as one.")


class OpsSettings(_Section):
    max_triage_bytes: int = Field(5_000_000, description="POST /v1/triage: largest log accepted (bytes).")
    max_groups: int = Field(50, description="Triage: groups shown (the rest are counted and said).")
    tool_output_chars: int = Field(8_000, description="System tools: output budget per call (truncation is said).")
    max_manifest_bytes: int = Field(262_144, description="Largest systems/<name>.yaml read.")
    http_timeout: float = Field(10.0, description="Seconds to wait for a metrics server.")


class ChangeSettings(_Section):
    apply_pause_s: float = Field(0.0, ge=0, description="Pause between file writes of an apply (for crash tests).")
    sample_chars: int = Field(4000, description="How much of one matching file the LLM sees to write a recipe.")


class SetupSettings(_Section):
    max_atoms: int = Field(12, ge=1, description="Most config-template / interface-input / procedure atoms retrieved.")


class WorkersSettings(_Section):
    """Celery workers (``kb worker``, ``kb run --via celery``): broker and time limits.

    Soft limit < hard limit < the broker's visibility timeout, or a task still running would be
    handed to a second worker (checked when the Celery app is made)."""

    broker_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Celery broker (redis:// or redis+socket:///path); --broker wins."
    )
    result_url: str | None = Field(None, description="Result backend; default: the broker URL.")
    visibility_timeout_s: float = Field(
        3600.0, gt=0, description="Seconds before an unacknowledged task is redelivered."
    )
    soft_time_limit_s: float = Field(1800.0, gt=0, description="A task is asked to stop after this many seconds.")
    time_limit_s: float = Field(2400.0, gt=0, description="A task is killed after this many seconds.")
    concurrency: int = Field(1, ge=1, description="kb worker: task processes (-c).")
    prefetch: int = Field(4, ge=1, description="Tasks a worker process reserves ahead (1 when it serves asr).")
    wait_timeout_s: float = Field(86400.0, gt=0, description="kb run --via celery: longest wait for the run.")
    run_lock_s: float = Field(
        7200.0, gt=0, description="A run's hold on its workspace lapses this long after its last task started."
    )


class Settings(BaseSettings):
    """All of kb's settings. ``Settings.load(workspace, **flags)`` is the way to build one."""

    model_config = SettingsConfigDict(
        env_prefix="KB_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
    )

    threads: int = Field(1, ge=1, description="CPU threads for models (1 is fastest on shared machines).")
    check: CheckSettings = CheckSettings()
    asr: AsrSettings = AsrSettings()
    diarise: DiariseSettings = DiariseSettings()
    llm: LlmSettings = LlmSettings()
    agent: AgentSettings = AgentSettings()
    distill: DistillSettings = DistillSettings()
    embed: EmbedSettings = EmbedSettings()
    serve: ServeSettings = ServeSettings()
    index: IndexSettings = IndexSettings()
    site: SiteSettings = SiteSettings()
    gaps: GapsSettings = GapsSettings()
    limits: LimitsSettings = LimitsSettings()
    allowed_roots: list[str] = Field(
        default_factory=list,
        description="Folders outside the workspace that workspace files may point to (transcripts, recordings).",
    )
    ops: OpsSettings = OpsSettings()
    change: ChangeSettings = ChangeSettings()
    setup: SetupSettings = SetupSettings()
    workers: WorkersSettings = WorkersSettings()

    _yaml_data: ClassVar[dict[str, Any]] = {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls, cls._yaml_data))

    @classmethod
    def load(cls, workspace: Path | None = None, **overrides: Any) -> Settings:
        """Read ``<workspace>/kb.yaml`` (if any), the environment, then ``overrides`` (flags).

        Overrides use dotted keys for sections: ``{"llm.model": "x"}``; ``None`` values are ignored.
        """
        data = read_kb_yaml(workspace / "kb.yaml") if workspace else {}
        nested: dict[str, Any] = {}
        for key, value in overrides.items():
            if value is None:
                continue
            section, _, name = key.partition(".")
            if name:
                nested.setdefault(section, {})[name] = value
            else:
                nested[section] = value
        try:
            cls._yaml_data = data
            return cls(**nested)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise ConfigError(
                f"Invalid setting '{loc}': {first['msg']}.",
                "Fix it in kb.yaml, the KB_* environment variable or the flag "
                "(see 'kb config' for every setting and its current value).",
            ) from None
        finally:
            cls._yaml_data = {}


SECRET_KEYS = ("api_key", "token", "password", "secret")


def read_kb_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    text = read_utf8(path, "Re-save kb.yaml as UTF-8.")
    try:
        data = safeload.load_yaml(text) or {}
    except InputLimitError as exc:
        raise InputLimitError(exc.message, exc.hint, path=path, line=exc.line) from None
    except InputError as exc:
        raise ConfigError(
            f"{path}:{exc.line}: kb.yaml is not valid YAML ({exc.message.removeprefix('not valid YAML: ')}).",
            "Fix the YAML syntax at that line.",
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: kb.yaml must be a mapping of settings.", "See README: Configuration.")
    for section, values in data.items():
        if isinstance(values, dict):
            for key in values:
                if key in SECRET_KEYS or (key.endswith(SECRET_KEYS) and not key.endswith("_env")):
                    raise ConfigError(
                        f"{path}: '{section}.{key}' looks like a secret; kb.yaml must not hold secrets.",
                        f"Put the value in an environment variable and name it with '{section}.{key}_env'.",
                    )
    url = (data.get("index") or {}).get("url") if isinstance(data.get("index"), dict) else None
    if isinstance(url, str) and re.search(r"://[^/@:]+:[^@/]*@", url):
        raise ConfigError(
            f"{path}: 'index.url' holds a password; kb.yaml must not hold secrets.",
            "Drop the password from the URL and export PGPASSWORD, or put the whole URL in KB_INDEX_URL.",
        )
    return data


class _YamlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]):
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def secret(env_var: str) -> str | None:
    """Read a secret from the environment (the only place secrets live)."""
    value = os.environ.get(env_var)
    return value or None
