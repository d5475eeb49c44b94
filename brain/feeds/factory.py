"""Builds the feed ``market.feed`` names from the market settings."""

from __future__ import annotations

from pathlib import Path

from brain.feeds.base import Feed, FeedCallback, FeedError
from brain.feeds.exchange import MAX_HISTORY, ExchangeFeed
from brain.feeds.replay import ReplayFeed
from brain.feeds.synthetic import SyntheticFeed
from shared.settings import MarketSettings
from shared.timeutil import parse_iso


def open_feed(
    market: MarketSettings,
    *,
    on_lost: FeedCallback,
    on_recovered: FeedCallback,
    history: int,
) -> Feed:
    """The configured feed. Replay reads its files here (a bad file fails at startup);
    ``on_lost`` / ``on_recovered`` and ``history`` (candles to warm up on, at most one page of
    the exchange's, ``MAX_HISTORY``) matter to the exchange feed only."""
    if market.feed == "replay":
        directory = Path(market.replay_dir)  # a relative path is taken from the working dir
        if not directory.is_dir():
            raise FeedError(f"market.replay_dir: no such folder: {directory.absolute()}")
        return ReplayFeed(directory, market.symbols, market.timeframe, market.replay_speed)
    if market.feed == "synthetic":
        try:
            start = parse_iso(market.synthetic_start)
        except ValueError as exc:
            raise FeedError(f"market.synthetic_start: {exc}") from None
        return SyntheticFeed(
            market.symbols,
            market.timeframe,
            market.synthetic_seed,
            start,
            speed=market.replay_speed,
        )
    if market.feed == "exchange":
        return ExchangeFeed(
            market.exchange,
            market.symbols,
            market.timeframe,
            poll_interval=market.exchange_poll_interval,
            retry_max=market.exchange_retry_max,
            lost_after=market.feed_lost_after,
            on_lost=on_lost,
            on_recovered=on_recovered,
            history=min(history, MAX_HISTORY),
        )
    raise FeedError(f"market.feed: unknown feed {market.feed!r}")
