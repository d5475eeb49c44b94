"""The AI strategist: asks Claude (Anthropic's Messages API) for parameter changes.

It sends a compact performance report, the active parameters and their bounds, and asks for
one JSON object of changes. The answer is untrusted input: anything that is not exactly a set
of known parameters with numeric values that, merged onto the active ones, pass
``StrategyParams``'s bounds and relations is rejected with a logged reason (``NoProposal``) and
never deployed. Every call that came back is recorded with its tokens and cost before the
answer is judged, because the tokens were spent either way. When today's budget (wall-clock
UTC) cannot cover another call, no request is made and the cycle falls back to the optimiser.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NoReturn

import anthropic

from brain.orchestrator.ai_usage import AiUsage
from brain.orchestrator.proposal import NoProposal, Proposal
from brain.strategy import StrategyParams
from shared import jsonutil
from shared.settings import AiSettings, Secret
from shared.timeutil import to_utc, utc_now

log = logging.getLogger(__name__)

PURPOSE = "strategy_proposal"
_MAX_DESCRIPTION = 500  # characters kept of the model's "why"; it is shown, never executed
_FENCE_RE = re.compile(r"^```(?:json)?\s*\n?(.*?)\n?\s*```$", re.DOTALL | re.IGNORECASE)

SYSTEM_PROMPT = """\
You tune the parameters of a long-only spot crypto trading strategy that paper-trades on \
candles. When flat it buys when the trend is bullish (ema_fast above ema_slow by at least \
trend_threshold_pct percent of price), the market is not volatile (ATR over atr_period below \
volatile_atr_pct percent of price), RSI over rsi_period lies within [rsi_entry_min, \
rsi_entry_max] and volume is at least volume_ratio_min times its volume_period average; the \
buy's confidence (0 to 1) must reach min_confidence. A position gets a stop loss stop_loss_atr \
ATRs below entry and a take profit take_profit_atr ATRs above. When holding it sells when RSI \
reaches rsi_exit or the trend turns bearish.

You get a performance report of the active parameters, the parameters themselves and the \
bounds each may take. Propose a small, justified change that should improve risk-adjusted \
returns. Rules:
- Answer with ONLY one JSON object, no prose around it: \
{"changes": {"<parameter>": <number>, ...}, "description": "<one sentence why>"}
- "changes" holds only the parameters you change (at least one), by their exact names.
- Every value is a number within its inclusive bounds; integer parameters take whole numbers.
- Keep ema_fast < ema_slow and rsi_entry_min < rsi_entry_max < rsi_exit.
"""


class AiStrategist:
    """Proposes a strategy version through the Messages API, within a daily token budget."""

    def __init__(
        self,
        settings: AiSettings,
        api_key: Secret,
        usage: AiUsage,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._settings = settings
        self._usage = usage
        self._clock = clock  # the wall clock, even in a replay: money is spent in real time
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key.get(),
            base_url=settings.base_url or None,
            timeout=settings.timeout,
            max_retries=settings.max_retries,
        )

    async def budget_remaining(self) -> int:
        """Tokens left of today's budget (UTC day of the wall clock)."""
        return await self._usage.remaining_on(to_utc(self._clock()).date())

    async def propose(self, active: StrategyParams, report: Mapping[str, Any]) -> Proposal:
        """A validated candidate from the model; NoProposal (logged) when there is none."""
        remaining = await self.budget_remaining()
        if remaining < self._settings.max_tokens:
            _reject(
                f"AI token budget spent: {remaining} of {self._settings.daily_token_budget} "
                f"tokens left today (UTC), a call may use {self._settings.max_tokens}"
            )
        model = self._settings.model
        called_at = self._clock()
        try:
            response = await self._client.messages.create(
                model=model,
                max_tokens=self._settings.max_tokens,
                system=SYSTEM_PROMPT,
                messages=[{"role": "user", "content": user_prompt(active, report)}],
            )
        except anthropic.APIStatusError as exc:  # RateLimitError, 5xx, 401...: after retries
            _reject(f"AI call failed: HTTP {exc.status_code} {_error_type(exc)}")
        except anthropic.APIError as exc:  # connection lost, timeout, unreadable response
            _reject(f"AI call failed: {type(exc).__name__}: {exc}")
        usage = response.usage
        # Prompt caching is not used, so the cache counts are zero; adding them keeps the
        # budget honest should that change.
        input_tokens = (
            usage.input_tokens
            + (usage.cache_creation_input_tokens or 0)
            + (usage.cache_read_input_tokens or 0)
        )
        # The requested model, not response.model: the price table and the budget are
        # configured by that name, and an alias answers with a dated snapshot's name.
        cost = await self._usage.record(
            model=model,
            purpose=PURPOSE,
            input_tokens=input_tokens,
            output_tokens=usage.output_tokens,
            called_at=called_at,
        )
        log.info(
            "AI call to %s: %d input + %d output tokens, $%.4f (%s)",
            model,
            input_tokens,
            usage.output_tokens,
            cost,
            response.stop_reason,
        )
        text = "".join(block.text for block in response.content if block.type == "text")
        return parse_answer(active, text, truncated=response.stop_reason == "max_tokens")

    async def aclose(self) -> None:
        await self._client.close()


def user_prompt(active: StrategyParams, report: Mapping[str, Any]) -> str:
    """The user message: the report, the active parameters and the bounds, as compact JSON."""
    bounds = {
        name: {"min": low, "max": high, "integer": name in StrategyParams.INTEGER_PARAMS}
        for name, (low, high) in StrategyParams.PARAM_BOUNDS.items()
    }
    return (
        f"Performance report:\n{jsonutil.dumps_str(dict(report))}\n\n"
        f"Active parameters:\n{jsonutil.dumps_str(active.to_dict())}\n\n"
        f"Bounds (inclusive):\n{jsonutil.dumps_str(bounds)}\n\n"
        "Answer with only the JSON object."
    )


def parse_answer(active: StrategyParams, text: str, *, truncated: bool = False) -> Proposal:
    """The proposal in the model's ``text``; NoProposal naming what is wrong with it."""
    body = text.strip()
    if fenced := _FENCE_RE.match(body):
        body = fenced.group(1).strip()
    try:
        answer = jsonutil.loads(body)
    except jsonutil.JSONDecodeError:
        cut = " (cut off at max_tokens)" if truncated else ""
        _reject(f"AI answer is not JSON{cut}: {_excerpt(text)}")
    if not isinstance(answer, dict):
        _reject(f"AI answer is not a JSON object: {_excerpt(text)}")
    # Keys other than "changes" and "description" are ignored: they cannot change what is
    # deployed, and refusing a sound answer over a stray note would waste the call.
    changes = answer.get("changes")
    if not isinstance(changes, dict) or not changes:
        _reject('AI answer has no non-empty "changes" object')
    if unknown := sorted(set(changes) - StrategyParams.PARAM_BOUNDS.keys()):
        _reject(f"AI answer changes unknown parameter(s): {', '.join(unknown)}")
    for name, value in changes.items():
        # bool is an int to Python, and a string "20" is not a number the model was asked for.
        if isinstance(value, bool) or not isinstance(value, int | float):
            _reject(f"AI answer gives {name} a non-numeric value {value!r}")
    description = answer.get("description")
    if not isinstance(description, str) or not description.strip():
        _reject('AI answer has no "description" string')
    try:
        params = StrategyParams.from_dict({**active.to_dict(), **changes})
    except ValueError as exc:  # bounds and relations; the message names the parameter
        _reject(f"AI answer is out of bounds: {exc}")
    if params == active:
        _reject("AI answer changes nothing: the parameters equal the active ones")
    return Proposal(params, description.strip()[:_MAX_DESCRIPTION], "ai")


def _reject(reason: str) -> NoReturn:
    """Log why there is no proposal, and raise it."""
    log.warning("no AI proposal: %s", reason)
    raise NoProposal(reason)


def _error_type(exc: anthropic.APIStatusError) -> str:
    """The API's error type (``rate_limit_error``, ``overloaded_error``...) when it sent one."""
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("type"), str):
            return f"{error['type']}: {error.get('message', '')}"
    return str(exc)


def _excerpt(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[:limit] + "...")
