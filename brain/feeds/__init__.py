"""Candle feeds: recorded files (replay), a seeded random market (synthetic), live candles from
an exchange through ccxt (exchange). The engine sees them all as a ``Feed``."""

from brain.feeds.base import Feed, FeedCallback, FeedError
from brain.feeds.exchange import ExchangeFeed
from brain.feeds.factory import open_feed
from brain.feeds.replay import ReplayFeed
from brain.feeds.synthetic import SyntheticFeed

__all__ = [
    "ExchangeFeed",
    "Feed",
    "FeedCallback",
    "FeedError",
    "ReplayFeed",
    "SyntheticFeed",
    "open_feed",
]
