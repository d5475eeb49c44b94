"""Replay of candle files: ``<BASE>_<QUOTE>-<timeframe>.csv`` or ``.csv.gz`` per symbol.

File format (see data/market/): a header, then ``timestamp_ms,date,open,high,low,close,volume``
rows in time order, ``timestamp_ms`` being the candle's OPEN time in UTC milliseconds.
"""

from __future__ import annotations

import csv
import gzip
import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt

from brain.feeds.base import FeedError, Pacer, timeframe_delta
from brain.models import Candle, CandleBatch

logger = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_COLUMNS = 7  # timestamp_ms, date, open, high, low, close, volume


@dataclass(frozen=True, slots=True)
class _Series:
    """One symbol's candles, held as arrays (a Candle object per row would cost ~10x the memory
    for the multi-month sets); Candles are built as the replay reaches them."""

    symbol: str
    open_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]  # rows of open, high, low, close, volume


def candle_file(directory: Path, symbol: str, timeframe: str) -> Path:
    """The file holding ``symbol``'s candles: ``BTC/USDT`` -> ``BTC_USDT-5m.csv[.gz]``."""
    stem = f"{symbol.replace('/', '_')}-{timeframe}"
    for suffix in (".csv", ".csv.gz"):
        path = directory / f"{stem}{suffix}"
        if path.is_file():
            return path
    raise FeedError(f"no candle file for {symbol}: expected {directory / stem}.csv or .csv.gz")


def load_series(path: Path, symbol: str) -> _Series:
    """Read one candle file; a malformed row is a FeedError naming the file and the line."""
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rt", newline="") as text:
                return _parse(text, path, symbol)
        with path.open(newline="") as text:
            return _parse(text, path, symbol)
    except (OSError, EOFError, UnicodeDecodeError) as exc:  # also a corrupt gzip stream
        raise FeedError(f"{path}: cannot read: {exc}") from exc


def _parse(text: Iterable[str], path: Path, symbol: str) -> _Series:
    open_ms: list[int] = []
    values: list[tuple[float, float, float, float, float]] = []
    previous = -1
    reader = csv.reader(text)
    for row in reader:
        line = reader.line_num  # the file's line, even if a quoted field spanned lines
        if not row or (line == 1 and row[0].strip() == "timestamp_ms"):
            continue  # the header, or a blank line
        if len(row) != _COLUMNS:
            raise FeedError(f"{path}:{line}: expected {_COLUMNS} columns, got {len(row)}: {row}")
        try:
            stamp = int(row[0])
            o, h, low, c, v = (float(field) for field in row[2:])
        except ValueError:
            raise FeedError(f"{path}:{line}: not a number in {row}") from None
        if stamp <= previous:
            raise FeedError(f"{path}:{line}: timestamp not after the previous row's: {stamp}")
        if not (0 < low <= min(o, c) and max(o, c) <= h) or v < 0:
            raise FeedError(f"{path}:{line}: inconsistent candle (low/open/close/high/volume)")
        previous = stamp
        open_ms.append(stamp)
        values.append((o, h, low, c, v))
    return _Series(
        symbol=symbol,
        open_ms=np.array(open_ms, dtype=np.int64),
        values=np.array(values, dtype=np.float64).reshape(-1, 5),
    )


class ReplayFeed:
    """Recorded candles, merged across symbols by close time, optionally paced.

    The files are read once, here in the constructor (so a bad file fails at startup); every
    ``batches()`` call then replays from the first candle.
    """

    name = "replay"

    def __init__(
        self, directory: Path, symbols: Sequence[str], timeframe: str, speed: float = 0.0
    ) -> None:
        self._timeframe = timeframe_delta(timeframe)
        self._speed = speed
        self._series = [
            load_series(candle_file(directory, symbol, timeframe), symbol) for symbol in symbols
        ]
        logger.info(
            "replay loaded %d candles of %d symbols from %s",
            sum(len(series.open_ms) for series in self._series),
            len(self._series),
            directory,
        )

    def __len__(self) -> int:
        """How many batches a replay yields (one per distinct candle time)."""
        return len(np.unique(np.concatenate([series.open_ms for series in self._series])))

    async def batches(self, after: datetime | None = None) -> AsyncIterator[CandleBatch]:
        pacer = Pacer(self._timeframe, self._speed, after)
        for batch in self._merged():
            await pacer.wait(batch.close_time)
            yield batch

    async def aclose(self) -> None:
        """Nothing to release: the files were closed once read."""

    def _merged(self) -> Iterator[CandleBatch]:
        step = self._timeframe
        # Every open time any file has, in order; a cursor per file walks along with it, so a
        # symbol without a row at some time is simply absent from that batch.
        times = np.unique(np.concatenate([series.open_ms for series in self._series]))
        cursors = [0] * len(self._series)
        stamps = [series.open_ms.tolist() for series in self._series]  # plain ints compare fast
        for stamp in times.tolist():
            open_time = _EPOCH + timedelta(milliseconds=stamp)
            close_time = open_time + step
            candles: dict[str, Candle] = {}
            for index, series in enumerate(self._series):
                row = cursors[index]
                if row < len(stamps[index]) and stamps[index][row] == stamp:
                    cursors[index] = row + 1
                    o, h, low, c, v = series.values[row].tolist()
                    candles[series.symbol] = Candle(
                        symbol=series.symbol,
                        open_time=open_time,
                        close_time=close_time,
                        open=o,
                        high=h,
                        low=low,
                        close=c,
                        volume=v,
                    )
            yield CandleBatch(close_time=close_time, candles=candles)
