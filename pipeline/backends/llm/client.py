"""LLM client: instructor over any OpenAI-compatible endpoint, with usage counted per request.

``make_client(settings)`` builds an ``LlmClient`` for OpenAI, Ollama, vLLM, llama.cpp server or
LiteLLM (anything speaking ``/v1/chat/completions``). Two calls:

- ``chat(messages)`` -> ``ChatResult(text, tokens_in, tokens_out)`` (the chat endpoint's answers);
- ``extract(Model, messages, validation_context=...)`` -> ``(obj, Usage)``: a validated pydantic
  object; validators that raise make instructor re-ask with the reason.

Every HTTP completion passes through one function here, so tokens are counted for *every*
request, including HTTP retries and instructor's re-asks (instructor only reports totals on
failure). The same function checks the budget before each request, so ``--max-cost`` stops
before it is exceeded. 429/5xx/timeouts are retried by the openai client with exponential
backoff from settings (a server's Retry-After wins).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pipeline import telemetry
from pipeline.backends import registry
from pipeline.backends.llm.base import ChatModel, ChatResult, RequestRecord, SharedBudget, Usage
from pipeline.backends.llm.tokens import count_tokens
from pipeline.config import LlmSettings, Settings, secret
from pipeline.errors import BackendError, BudgetExceededError, ConfigError, KbError, MissingDependencyError

T = TypeVar("T")


class ExtractionError(BackendError):
    """The model's answer never validated. ``raw`` is its last answer (JSON text), if any."""

    def __init__(self, message: str, hint: str | None, *, raw: str | None, errors: str, usage: Usage):
        super().__init__(message, hint)
        self.raw = raw
        self.errors = errors
        self.usage = usage


@dataclass
class _Call:
    usage: Usage = field(default_factory=Usage)
    requests: int = 0


def price(settings: LlmSettings, tokens_in: int, tokens_out: int) -> float:
    return tokens_in * settings.price_in_per_1m / 1e6 + tokens_out * settings.price_out_per_1m / 1e6


def configured(settings: Settings) -> bool:
    """True when a base URL or an API key is configured (then ``llm`` is the default backend)."""
    return bool(settings.llm.base_url or secret(settings.llm.api_key_env))


class LlmClient(ChatModel):
    """One endpoint and model. ``budget_usd`` (or None) bounds everything this client spends.

    Thread-safe: per-call accounting is thread-local and the running totals take a lock, so one
    client can serve concurrent ``chat`` calls (the chat endpoint's workers).
    """

    def __init__(self, settings: Settings, *, budget_usd: float | None = None):
        self.settings = settings
        self.cfg = settings.llm
        self.model = self.cfg.model
        self.budget_usd = budget_usd
        self.total = Usage()
        self.on_request: Callable[[RequestRecord], None] | None = None
        self.shared_budget: SharedBudget | None = None  # checked instead of budget_usd when set
        self._local = threading.local()
        self._lock = threading.Lock()
        self._openai, self._instructor_mod = _imports()
        self._client = self._make_openai()
        self._patched = self._make_patched()

    @property
    def _call(self) -> _Call | None:
        return getattr(self._local, "call", None)

    @_call.setter
    def _call(self, value: _Call | None) -> None:
        self._local.call = value

    # construction ------------------------------------------------------------------------
    def _make_openai(self) -> Any:
        openai = self._openai
        key = secret(self.cfg.api_key_env)
        if not self.cfg.base_url and not key:
            raise no_endpoint(self.cfg, "or distill offline with --backend extractive")
        cfg = self.cfg
        owner = self

        base: Any = openai.OpenAI  # imported lazily: a run-time class

        class _Client(base):  # backoff from settings; count HTTP retries
            def _calculate_retry_timeout(
                self, remaining_retries: int, options: Any, response_headers: Any = None
            ) -> float:
                after = self._parse_retry_after_header(response_headers)
                if after is not None and 0 <= after <= 120:
                    return after
                n = max(self.max_retries - remaining_retries, 0)
                return min(cfg.backoff_s * (2**n), cfg.backoff_max_s)

            def _sleep_for_retry(self, **kwargs: Any) -> None:
                with owner._lock:
                    owner.total.retries += 1
                if owner._call is not None:
                    owner._call.usage.retries += 1
                super()._sleep_for_retry(**kwargs)

        return _Client(
            base_url=cfg.base_url or None,
            api_key=key or "not-needed",
            max_retries=cfg.http_retries,
            timeout=cfg.timeout_s,
        )

    def _make_patched(self) -> Any:
        instructor = self._instructor_mod
        modes = {
            "tools": instructor.Mode.TOOLS,
            "json": instructor.Mode.JSON,
            "json_schema": instructor.Mode.JSON_SCHEMA,
            "md_json": instructor.Mode.MD_JSON,
        }
        return instructor.patch(create=self._create, mode=modes[self.cfg.mode])

    # the one place every completion goes through -----------------------------------------
    def _create(self, **kwargs: Any) -> Any:
        messages = kwargs.get("messages") or []
        reask = any(m.get("role") == "tool" for m in messages if isinstance(m, dict)) or (
            self._call is not None and self._call.requests > 0
        )
        self.check_budget(messages, kwargs.get("tools"), kwargs.get("max_tokens") or self.cfg.max_output_tokens)
        retries_before = self._call.usage.retries if self._call is not None else 0
        model = str(kwargs.get("model") or self.model)
        with telemetry.span(f"chat {model}", "client", **telemetry.chat_attributes(model, kwargs)) as span:
            try:
                response = self._client.chat.completions.create(**kwargs)
            except BaseException as exc:
                if self.shared_budget is not None:  # nothing was spent: give the reservation back
                    with contextlib.suppress(Exception):  # if that fails too, the hold stays: more careful, never less
                        self.shared_budget.release()
                if isinstance(exc, self._openai.APIError):
                    raise _backend_error(exc, self.cfg) from exc
                raise
            tin, tout, cost = self._count(response, messages, reask, retries_before)
            span.set_attributes(telemetry.clean(telemetry.chat_result_attributes(response, tin, tout, cost, reask)))
        return response

    def _count(self, response: Any, messages: list[Any], reask: bool, retries_before: int) -> tuple[int, int, float]:
        """Count one completion's tokens and cost everywhere they are summed; returns (in, out, cost)."""
        usage = getattr(response, "usage", None)
        tin = int(getattr(usage, "prompt_tokens", 0) or 0)
        tout = int(getattr(usage, "completion_tokens", 0) or 0)
        if usage is None:  # some servers omit usage: estimate rather than report zero
            tin = count_tokens(json.dumps(messages, default=str))
            tout = count_tokens(_answer_text(response) or "")
        cost = price(self.cfg, tin, tout)
        step = Usage(requests=1, reasks=1 if reask else 0, tokens_in=tin, tokens_out=tout, cost_usd=cost)
        with self._lock:
            self.total.add(step)
        retries = 0
        if self._call is not None:
            retries = self._call.usage.retries - retries_before
            self._call.usage.add(step)
            self._call.requests += 1
        if self.on_request is not None:
            self.on_request(RequestRecord(tin, tout, cost, reask, retries))
        return tin, tout, cost

    def estimate_request(
        self, messages: list[dict[str, Any]], tools: Any = None, max_tokens: int | None = None
    ) -> float:
        """Upper-bound cost of one request: its prompt plus the most the model may write."""
        prompt = count_tokens(json.dumps(messages, default=str) + (json.dumps(tools, default=str) if tools else ""))
        return price(self.cfg, prompt, max_tokens or self.cfg.max_output_tokens)

    def check_budget(self, messages: list[dict[str, Any]], tools: Any = None, max_tokens: int | None = None) -> None:
        if self.shared_budget is not None:
            self.shared_budget.reserve(self.estimate_request(messages, tools, max_tokens))
            return
        if self.budget_usd is None:
            return
        estimate = self.estimate_request(messages, tools, max_tokens)
        with self._lock:
            spent = self.total.cost_usd
        if spent + estimate > self.budget_usd:
            raise BudgetExceededError(
                f"Stopped before exceeding the budget: spent ${spent:.4f}, the next request "
                f"could cost up to ${estimate:.4f}, the limit is ${self.budget_usd:.4f}.",
                "Raise --max-cost (or distill.max_cost_usd); finished windows are cached, so a re-run resumes.",
            )

    # public API --------------------------------------------------------------------------
    def chat(self, messages: list[dict[str, Any]], *, max_tokens: int | None = None) -> ChatResult:
        """A plain completion: the answer text and its tokens."""
        self._call = _Call()
        try:
            response = self._create(
                model=self.model,
                messages=messages,
                temperature=self.cfg.temperature,
                max_tokens=max_tokens or self.cfg.max_output_tokens,
            )
        finally:
            call, self._call = self._call, None
        return ChatResult(_answer_text(response) or "", call.usage.tokens_in, call.usage.tokens_out)

    def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        max_tokens: int | None = None,
    ) -> tuple[dict[str, Any], Usage]:
        """One completion that may call function ``tools``: the assistant message as a dict
        (``content``, ``tool_calls`` as the API sends them) and its usage (for agent loops)."""
        self._call = _Call()
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.cfg.temperature,
            "max_tokens": max_tokens or self.cfg.max_output_tokens,
        }
        if tools:
            kwargs["tools"] = tools
        try:
            response = self._create(**kwargs)
        finally:
            call, self._call = self._call, None
        message = response.choices[0].message
        calls = [
            {"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
            for c in (getattr(message, "tool_calls", None) or [])
        ]
        out: dict[str, Any] = {"role": "assistant", "content": message.content}
        if calls:
            out["tool_calls"] = calls
        return out, call.usage

    def extract(
        self,
        response_model: type[T],
        messages: list[dict[str, Any]],
        *,
        validation_context: dict[str, Any] | None = None,
        max_retries: int | None = None,
    ) -> tuple[T, Usage]:
        """A validated ``response_model`` and the usage of every request it took (re-asks included)."""
        instructor = self._instructor_mod
        self._call = _Call()
        try:
            obj = self._patched(
                model=self.model,
                messages=messages,
                response_model=response_model,
                context=validation_context,
                max_retries=self.cfg.max_retries if max_retries is None else max_retries,
                temperature=self.cfg.temperature,
                max_tokens=self.cfg.max_output_tokens,
            )
        except instructor.core.exceptions.InstructorRetryException as exc:
            usage = self._call.usage
            cause = _kb_cause(exc)
            if cause is not None:
                raise cause from None
            raw = _answer_text(exc.last_completion) if exc.last_completion is not None else None
            errors = str(exc.__cause__ or exc)
            raise ExtractionError(
                f"The model's answer did not validate after {exc.n_attempts} attempt(s): {_first_line(errors)}",
                "Try a stronger model (llm.model), more re-asks (llm.max_retries), or --backend extractive.",
                raw=raw,
                errors=errors,
                usage=usage,
            ) from None
        finally:
            call, self._call = self._call, None
        return obj, call.usage

    def close(self) -> None:
        self._client.close()


def no_endpoint(cfg: Any, instead: str) -> ConfigError:
    """The error for a command that needs an LLM when none is configured; ``instead``: what to do without one."""
    return ConfigError(
        "No LLM endpoint is configured (no llm.base_url and no API key).",
        f"Set llm.base_url in kb.yaml (e.g. http://localhost:11434/v1 for Ollama) or export {cfg.api_key_env}=...; "
        f"{instead}.",
    )


def make_client(settings: Settings, *, budget_usd: float | None = None) -> LlmClient:
    """An ``LlmClient`` for ``settings.llm``; raises ConfigError/MissingDependencyError with the fix."""
    if settings.llm.provider not in registry.names("llm"):
        raise ConfigError(
            f"LLM provider '{settings.llm.provider}' is not supported here.",
            "Use llm.provider: openai with llm.base_url pointing at any OpenAI-compatible server "
            "(Ollama, vLLM, llama.cpp, LiteLLM for other providers).",
        )
    client: LlmClient = registry.create("llm", settings.llm.provider, settings, budget_usd=budget_usd)
    return client


# ---------------------------------------------------------------------------------------------


def _imports() -> tuple[Any, Any]:
    try:
        import openai
    except ImportError:
        raise MissingDependencyError("openai", "llm", "The LLM backend") from None
    try:
        import instructor
        import instructor.core.exceptions  # noqa: F401
    except ImportError:
        raise MissingDependencyError("instructor", "llm", "The LLM backend") from None
    import logging

    # instructor logs each failed attempt at ERROR; kb reports failures itself (once, with the fix)
    logging.getLogger("instructor").setLevel(logging.CRITICAL)
    return openai, instructor


def _answer_text(response: Any) -> str | None:
    """The tool-call arguments or the message content of a completion."""
    try:
        message = response.choices[0].message
    except (AttributeError, IndexError):
        return None
    calls = getattr(message, "tool_calls", None)
    if calls:
        return calls[0].function.arguments
    return message.content


def _kb_cause(exc: BaseException) -> KbError | None:
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 10:
        if isinstance(cur, KbError):
            return cur
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return None


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " ".join(lines[:3])[:300]


def _backend_error(exc: Any, cfg: LlmSettings) -> KbError:
    import openai

    where = cfg.base_url or "the OpenAI API"
    if isinstance(exc, openai.AuthenticationError):
        return ConfigError(
            f"The LLM endpoint {where} rejected the API key (401).",
            f"Check the key in the environment variable {cfg.api_key_env}.",
        )
    if isinstance(exc, openai.NotFoundError):
        return ConfigError(
            f"The LLM endpoint {where} does not know model '{cfg.model}' (404).",
            "Set llm.model (or KB_LLM_MODEL) to a model the server serves.",
        )
    if isinstance(exc, openai.APITimeoutError):
        return BackendError(
            f"The LLM endpoint {where} did not answer within {cfg.timeout_s:g} s ({cfg.http_retries} retries).",
            "Raise llm.timeout_s, or use a smaller model or smaller windows (distill.window_tokens).",
        )
    if isinstance(exc, openai.APIConnectionError):
        return BackendError(
            f"Cannot reach the LLM endpoint {where}: {str(exc).rstrip('.')}.",
            "Start the server or fix llm.base_url (KB_LLM_BASE_URL).",
        )
    if isinstance(exc, openai.RateLimitError):
        return BackendError(
            f"The LLM endpoint {where} kept answering 429 (rate limited) after {cfg.http_retries} retries.",
            "Wait and re-run (finished windows are cached), or raise llm.http_retries / llm.backoff_s.",
        )
    status = getattr(exc, "status_code", None)
    return BackendError(
        f"The LLM endpoint {where} failed" + (f" with HTTP {status}" if status else "") + f": {exc}",
        "Re-run later (finished windows are cached), or check the server's logs.",
    )
