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

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from pipeline.errors import ConfigError
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
    uncertain_below: float | None = Field(None, description="Override the calibrated threshold.")


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
    distill: DistillSettings = DistillSettings()
    embed: EmbedSettings = EmbedSettings()
    serve: ServeSettings = ServeSettings()
    index: IndexSettings = IndexSettings()
    site: SiteSettings = SiteSettings()

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
    try:
        data = yaml.safe_load(read_utf8(path, "Re-save kb.yaml as UTF-8.")) or {}
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ConfigError(
            f"{path}:{line}: kb.yaml is not valid YAML ({exc.problem}).",
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
