"""The offline feeds: replay of the shipped Binance candles, the seeded synthetic market, and
the factory that picks a feed from the settings."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import shutil
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from brain.feeds import ExchangeFeed, Feed, FeedError, ReplayFeed, SyntheticFeed, open_feed
from brain.models import CandleBatch
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "data" / "market" / "binance-spot-5m-2024-07-22_2024-08-11"
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "DOGE/USDT", "LTC/USDT")
STEP = timedelta(minutes=5)
HEADER = "timestamp_ms,date,open,high,low,close,volume\n"


async def collect(
    stream: AsyncIterator[CandleBatch], limit: int | None = None
) -> list[CandleBatch]:
    out: list[CandleBatch] = []
    async for batch in stream:
        out.append(batch)
        if limit is not None and len(out) >= limit:
            break
    return out


async def timed(stream: AsyncIterator[CandleBatch], count: int) -> list[tuple[CandleBatch, float]]:
    """The first ``count`` batches with the monotonic time each arrived."""
    out: list[tuple[CandleBatch, float]] = []
    async for batch in stream:
        out.append((batch, time.monotonic()))
        if len(out) >= count:
            break
    return out


@pytest.fixture(scope="module")
def shipped() -> ReplayFeed:
    return ReplayFeed(SHIPPED, SYMBOLS, "5m", 0.0)


def read_row(path: Path, line: int) -> list[str]:
    with path.open(newline="") as text:
        for number, row in enumerate(csv.reader(text), start=1):
            if number == line:
                return row
    raise AssertionError(f"{path} has no line {line}")


def write_candles(path: Path, rows: list[tuple[int, float]]) -> None:
    """A candle file of (open ms, price) rows with flat candles."""
    lines = [HEADER]
    for stamp, price in rows:
        lines.append(f"{stamp},x,{price},{price + 1},{price - 1},{price},5.0\n")
    path.write_text("".join(lines))


# --- replay ---------------------------------------------------------------------------------


def test_the_shipped_set_loads_fast() -> None:
    started = time.perf_counter()
    ReplayFeed(SHIPPED, SYMBOLS, "5m", 0.0)
    assert time.perf_counter() - started < 0.5


async def test_replay_of_the_shipped_set(shipped: ReplayFeed) -> None:
    feed: Feed = shipped
    assert feed.name == "replay"
    batches = await collect(feed.batches())
    assert len(batches) == 6048
    assert all(len(batch.candles) == 6 for batch in batches)
    assert batches[0].close_time == datetime(2024, 7, 22, 0, 5, tzinfo=UTC)
    assert batches[-1].close_time == datetime(2024, 8, 12, tzinfo=UTC)
    assert all(b.close_time - a.close_time == STEP for a, b in pairwise(batches))

    # Spot checks against the files, read independently (line 1 is the header).
    for symbol in SYMBOLS:
        path = SHIPPED / f"{symbol.replace('/', '_')}-5m.csv"
        for index in (0, 1234, 4321, 6047):
            row = read_row(path, index + 2)
            candle = batches[index].candles[symbol]
            assert candle.symbol == symbol
            assert candle.open_time == datetime.fromisoformat(row[1])
            assert candle.open_time.timestamp() * 1000 == int(row[0])
            assert candle.close_time == candle.open_time + STEP == batches[index].close_time
            values = (candle.open, candle.high, candle.low, candle.close, candle.volume)
            assert values == tuple(float(field) for field in row[2:])


async def test_every_stream_starts_from_the_beginning(shipped: ReplayFeed) -> None:
    first = await collect(shipped.batches(), limit=3)
    again = await collect(shipped.batches(after=first[-1].close_time), limit=3)
    assert again == first


async def test_gzip_files_replay_the_same(tmp_path: Path, shipped: ReplayFeed) -> None:
    for name in ("BTC_USDT-5m.csv", "ETH_USDT-5m.csv"):
        with (SHIPPED / name).open("rb") as source, gzip.open(tmp_path / f"{name}.gz", "wb") as gz:
            shutil.copyfileobj(source, gz)
    zipped = await collect(ReplayFeed(tmp_path, ("BTC/USDT", "ETH/USDT"), "5m").batches())
    plain = await collect(shipped.batches())
    assert len(zipped) == 6048
    for ours, theirs in zip(zipped, plain, strict=True):
        assert ours.close_time == theirs.close_time
        assert ours.candles == {s: theirs.candles[s] for s in ("BTC/USDT", "ETH/USDT")}


async def test_a_symbol_missing_at_a_time_is_absent_from_that_batch(tmp_path: Path) -> None:
    base = 1_721_606_400_000
    minute5 = 300_000
    write_candles(tmp_path / "AAA_USDT-5m.csv", [(base + i * minute5, 10.0 + i) for i in range(4)])
    write_candles(tmp_path / "BBB_USDT-5m.csv", [(base + i * minute5, 50.0) for i in (1, 3, 4)])
    batches = await collect(ReplayFeed(tmp_path, ("AAA/USDT", "BBB/USDT"), "5m").batches())
    assert [sorted(batch.candles) for batch in batches] == [
        ["AAA/USDT"],
        ["AAA/USDT", "BBB/USDT"],
        ["AAA/USDT"],
        ["AAA/USDT", "BBB/USDT"],
        ["BBB/USDT"],
    ]
    assert [b.close_time.timestamp() * 1000 for b in batches] == [
        base + i * minute5 for i in range(1, 6)
    ]


def test_a_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(FeedError, match=r"SOL_USDT-5m\.csv"):
        ReplayFeed(tmp_path, ("SOL/USDT",), "5m")


@pytest.mark.parametrize(
    ("bad_line", "problem"),
    [
        ("1721607300000,x,1.0,2.0,0.5,oops,3.0", "not a number"),
        ("1721607300000,x,1.0,2.0,0.5", "expected 7 columns"),
        ("1721606700000,x,1.0,2.0,0.5,1.5,3.0", "timestamp not after the previous"),
        ("1721607300000,x,1.0,2.0,1.2,1.5,3.0", "inconsistent"),
    ],
)
def test_a_bad_row_names_the_file_and_line(tmp_path: Path, bad_line: str, problem: str) -> None:
    good = "1721606400000,x,1.0,2.0,0.5,1.5,3.0\n1721606700000,x,1.0,2.0,0.5,1.5,3.0\n"
    path = tmp_path / "BTC_USDT-5m.csv"
    path.write_text(HEADER + good + bad_line + "\n")
    with pytest.raises(FeedError, match=rf"BTC_USDT-5m\.csv:4: {problem}"):
        ReplayFeed(tmp_path, ("BTC/USDT",), "5m")


def test_a_bad_row_in_a_gzip_file_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "BTC_USDT-5m.csv.gz"
    with gzip.open(path, "wt") as text:
        text.write(HEADER + "1721606400000,x,1.0,2.0,0.5,1.5,3.0\nnonsense,x,1,1,1,1,1\n")
    with pytest.raises(FeedError, match=r"BTC_USDT-5m\.csv\.gz:3: not a number"):
        ReplayFeed(tmp_path, ("BTC/USDT",), "5m")


async def test_pacing_spaces_batches_after_the_checkpoint_only() -> None:
    # 5-minute candles at 1,500x: one batch every 0.2 s of wall time.
    feed = ReplayFeed(SHIPPED, ("BTC/USDT",), "5m", speed=300 * 5)
    started = time.monotonic()
    arrivals = [at for _, at in await timed(feed.batches(), 4)]
    gaps = [b - a for a, b in pairwise(arrivals)]
    assert arrivals[0] - started < 0.15  # the first batch does not wait
    assert all(0.15 <= gap <= 0.6 for gap in gaps), gaps

    checkpoint = datetime(2024, 7, 22, 1, 0, tzinfo=UTC)  # the 12th batch
    started = time.monotonic()
    received = await timed(feed.batches(after=checkpoint), 14)
    assert received[11][0].close_time == checkpoint
    assert received[11][1] - started < 0.15  # history up to the checkpoint: no delay at all
    later = [at for _, at in received[11:]]
    assert all(0.15 <= b - a <= 0.6 for a, b in pairwise(later)), later


async def test_speed_zero_does_not_pace(shipped: ReplayFeed) -> None:
    started = time.monotonic()
    assert len(await collect(shipped.batches())) == 6048
    assert time.monotonic() - started < 5.0


# --- synthetic ------------------------------------------------------------------------------

START = datetime(2024, 1, 1, tzinfo=UTC)


async def synthetic(
    seed: int, count: int, symbols: tuple[str, ...] = SYMBOLS[:3]
) -> list[CandleBatch]:
    return await collect(SyntheticFeed(symbols, "5m", seed, START, count).batches())


async def test_synthetic_is_reproducible() -> None:
    first = await synthetic(7, 1500)
    assert first == await synthetic(7, 1500)
    assert first[0].close_time == START + STEP
    assert first[:700] == await synthetic(7, 700)  # a shorter run is a prefix
    other = await synthetic(8, 1500)
    assert [b.candles for b in other] != [b.candles for b in first]
    # Each symbol's walk depends on the seed and its name, not on its place in the list.
    reordered = await synthetic(7, 300, tuple(reversed(SYMBOLS[:3])))
    assert [b.candles["ETH/USDT"] for b in reordered] == [
        b.candles["ETH/USDT"] for b in first[:300]
    ]


async def test_synthetic_candles_are_consistent() -> None:
    batches = await synthetic(11, 5000)
    assert len(batches) == 5000
    for index, batch in enumerate(batches):
        assert batch.close_time == START + (index + 1) * STEP
        assert set(batch.candles) == set(SYMBOLS[:3])
        for candle in batch.candles.values():
            assert candle.close_time == candle.open_time + STEP == batch.close_time
            assert 0 < candle.low <= min(candle.open, candle.close)
            assert max(candle.open, candle.close) <= candle.high
            assert candle.volume > 0
    for symbol in SYMBOLS[:3]:  # one continuous walk: each candle opens at the last close
        closes = [b.candles[symbol].close for b in batches]
        opens = [b.candles[symbol].open for b in batches]
        assert opens[1:] == closes[:-1]


async def test_synthetic_regimes_show_in_the_volatility() -> None:
    batches = await synthetic(3, 5000)
    for symbol in SYMBOLS[:3]:
        closes = np.array([b.candles[symbol].close for b in batches])
        returns = np.diff(np.log(closes))
        windows = [float(np.std(returns[i : i + 100])) for i in range(0, len(returns) - 100, 100)]
        quiet, busy = np.percentile(windows, [10, 90])
        # One constant volatility would keep these within ~1.3x of each other.
        assert busy > 2.5 * quiet, (symbol, quiet, busy)


async def test_synthetic_without_a_count_is_endless() -> None:
    feed = SyntheticFeed(("BTC/USDT",), "1h", 1, START)
    batches = await collect(feed.batches(), limit=20_000)
    assert len(batches) == 20_000
    assert batches[-1].close_time == START + 20_000 * timedelta(hours=1)
    await feed.aclose()


# --- factory --------------------------------------------------------------------------------


async def _quiet() -> None:
    """A callback the offline feeds never call."""


def test_open_feed_replay_resolves_a_relative_dir(
    base_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    market = dataclasses.replace(base_settings.market, feed="replay")
    assert not Path(market.replay_dir).is_absolute()
    feed = open_feed(market, on_lost=_quiet, on_recovered=_quiet, history=300)
    assert isinstance(feed, ReplayFeed)


def test_open_feed_replay_missing_dir_names_the_setting(
    base_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    market = dataclasses.replace(base_settings.market, feed="replay")
    with pytest.raises(FeedError, match=r"market\.replay_dir"):
        open_feed(market, on_lost=_quiet, on_recovered=_quiet, history=300)


async def test_open_feed_synthetic_and_exchange(base_settings: Settings) -> None:
    market = dataclasses.replace(base_settings.market, feed="synthetic")
    feed = open_feed(market, on_lost=_quiet, on_recovered=_quiet, history=300)
    assert feed.name == "synthetic"
    first = await collect(feed.batches(), limit=1)
    assert first[0].close_time == datetime.fromisoformat(market.synthetic_start) + STEP
    assert set(first[0].candles) == set(market.symbols)

    # Building the exchange feed contacts nobody; requests start with batches().
    market = dataclasses.replace(base_settings.market, feed="exchange")
    feed = open_feed(market, on_lost=_quiet, on_recovered=_quiet, history=300)
    assert isinstance(feed, ExchangeFeed)
    assert feed.name == "exchange"
    await feed.aclose()
