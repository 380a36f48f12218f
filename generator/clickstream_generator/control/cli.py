"""The ``csgen`` command line.

``csgen run`` generates events into a sink; ``csgen tail`` reads them back from
a stream. ``csgen run --serve [HOST:]PORT`` also serves the HTTP control API
(see docs/api.md): the process then boots idle unless ``--autostart``, keeps
running after a stop, and exits on SIGTERM after stopping and flushing.

Errors are one sentence on stderr (a traceback only with ``--debug``).
Exit codes: 0 all delivered, 1 something was not delivered or the run
failed, 2 bad usage or configuration, 130 interrupted twice.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clickstream_generator import __version__
from clickstream_generator.control import importing, logs, serving
from clickstream_generator.control.api import ApiSettings, make_app
from clickstream_generator.control.auth import Token, TokenError, load_token
from clickstream_generator.control.progress import report_progress, summary_line
from clickstream_generator.engine.running import Limits, Producer, RunSettings, State
from clickstream_generator.kits import collecting
from clickstream_generator.kits.errors import GeneratorError
from clickstream_generator.model.documents import PARTITION_KEY_MODES, DocumentConfig
from clickstream_generator.model.errors import ConfigError
from clickstream_generator.model.events import derive_seed
from clickstream_generator.model.loading import CONFIG_ENV, load_config
from clickstream_generator.model.settings import ClickModel, ShardCount, ShardIndex, ShardSlice
from clickstream_generator.sinks.base import Sink, SinkError
from clickstream_generator.sinks.streams import FileSink, StdoutSink

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_UNDELIVERED = 1
EXIT_USAGE = 2

#: Events per second when neither the command line nor the configuration says.
DEFAULT_RATE = 10.0


class UsageError(GeneratorError):
    """A command line that cannot be carried out."""


# -- argument parsing -------------------------------------------------------


def _rate(text: str) -> float | str:
    if text.strip().lower() == "max":
        return "max"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number of events per second or 'max' (got {text!r})"
        ) from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be > 0 (got {text})")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number (got {text!r})") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (got {value})")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds (got {text!r})") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (got {text})")
    return value


def _address(text: str) -> tuple[str, int]:
    try:
        return serving.parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="csgen",
        description="Synthetic clickstream generator for AWS Kinesis Data Streams.",
    )
    parser.add_argument("--version", action="version", version=f"csgen {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="generate events into Kinesis, stdout or a file",
        description=(
            "Generate click events at an exact rate. With no --stream and no "
            "--kinesis-endpoint, events go to an embedded Kinesis on loopback."
        ),
    )
    _add_common(run)
    what = run.add_argument_group("what to generate")
    what.add_argument(
        "--config",
        type=Path,
        help=f"csgen.properties or YAML configuration (default: ${CONFIG_ENV} if set)",
    )
    what.add_argument("--rate", type=_rate, help="events per second (fractions allowed) or 'max'")
    what.add_argument("--count", type=_positive_int, help="stop after this many events")
    what.add_argument("--duration", type=_seconds, help="stop after this many seconds")
    what.add_argument("--seed", type=_positive_int, help="seed of the random stream")
    what.add_argument(
        "--shard-index", type=_positive_int, default=0, help="this producer's index k"
    )
    what.add_argument("--shard-count", type=_positive_int, default=1, help="number of producers n")
    what.add_argument("--producer-id", help="producer_id of the events (default: from POD_NAME)")
    what.add_argument(
        "--partition-key", choices=PARTITION_KEY_MODES, help="partition by user id or at random"
    )
    where = run.add_argument_group("where to send it")
    where.add_argument(
        "--sink",
        default="kinesis",
        help="kinesis (default), stdout, or file:PATH (JSON lines, appended)",
    )
    where.add_argument("--stream", help="Kinesis stream name or ARN")
    where.add_argument("--region", help="AWS region (default: from the AWS environment)")
    where.add_argument("--kinesis-endpoint", help="Kinesis endpoint URL (emulators)")
    where.add_argument(
        "--max-in-flight", type=_positive_int, default=4, help="PutRecords requests at once"
    )
    where.add_argument("--linger-ms", type=_seconds, default=100.0, help="batch linger time")
    where.add_argument(
        "--record-deadline",
        type=_seconds,
        default=300.0,
        help="seconds a record may be retried (0: forever)",
    )
    where.add_argument("--spool", type=Path, help="where undelivered events are written")
    where.add_argument(
        "--buffer-records",
        type=_positive_int,
        default=100_000,
        help="events buffered or in flight before generation slows down",
    )
    where.add_argument(
        "--buffer-mb", type=_positive_int, default=32, help="MiB buffered before it slows down"
    )
    where.add_argument(
        "--ordered",
        action="store_true",
        help="keep each partition key's order (one request per key at a time)",
    )
    where.add_argument(
        "--aggregate",
        action="store_true",
        help="pack events of one shard into KPL aggregated records (see docs/kinesis-sink.md)",
    )
    where.add_argument(
        "--shutdown-timeout",
        type=_seconds,
        default=20.0,
        help="seconds to flush on stop or SIGTERM before spooling the rest",
    )
    control = run.add_argument_group("control API (see docs/api.md)")
    control.add_argument(
        "--serve",
        type=_address,
        nargs="?",
        const=(serving.DEFAULT_HOST, serving.DEFAULT_PORT),
        metavar="[HOST:]PORT",
        help="serve the HTTP control API (default 127.0.0.1:8080; in Kubernetes $(POD_IP):8080)",
    )
    control.add_argument(
        "--autostart", action="store_true", help="with --serve: start generating at once"
    )
    control.add_argument(
        "--token-file", type=Path, help="file holding the API bearer token (a mounted Secret)"
    )
    control.add_argument(
        "--no-auth", action="store_true", help="serve the API without a token (trusted networks)"
    )
    control.add_argument(
        "--open-probes",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="leave /healthz, /readyz and /metrics open to kubelet and Prometheus (default: on)",
    )
    run.add_argument(
        "--progress-every", type=_seconds, default=5.0, help="seconds between progress lines"
    )
    run.add_argument("--quiet", action="store_true", help="no progress lines")

    tail = commands.add_parser("tail", help="print events read back from a stream")
    _add_common(tail)
    tail.add_argument("--stream", required=True, help="stream name or ARN")
    tail.add_argument("--region", help="AWS region")
    tail.add_argument("--kinesis-endpoint", help="Kinesis endpoint URL (emulators)")
    tail.add_argument("--count", type=_positive_int, help="stop after this many events")
    tail.add_argument(
        "--from",
        dest="position",
        choices=("oldest", "latest"),
        default="oldest",
        help="start at the oldest record (default) or only show new ones",
    )
    tail.add_argument(
        "--follow", action="store_true", help="keep waiting for new records until Ctrl-C"
    )

    _add_common(importing.add_parser(commands))

    operator = commands.add_parser(
        "operator",
        help="run the Kubernetes operator for ClickstreamGenerator resources",
        description="Run the csgen operator (kopf) until SIGTERM; see docs/operator.md.",
    )
    _add_common(operator)
    try:
        from clickstream_operator.handlers.options import add_arguments
    except ImportError:  # the operator's dependencies are not installed
        pass
    else:
        add_arguments(operator)
    return parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="verbose logs and tracebacks")
    parser.add_argument(
        "--log-format", choices=("plain", "json"), default="plain", help="log line format"
    )


# -- csgen run ---------------------------------------------------------------


@dataclass
class RunPlan:
    """A `csgen run` command line, resolved against its configuration file."""

    settings: RunSettings
    limits: Limits
    seed: int
    producer_id: str
    config: DocumentConfig


def plan_run(args: argparse.Namespace, environ: dict[str, str]) -> RunPlan:
    """Merge flags over the configuration file over the defaults."""
    config_path = args.config or (Path(environ[CONFIG_ENV]) if environ.get(CONFIG_ENV) else None)
    if config_path is not None:
        config = load_config(config_path)
    else:
        config = DocumentConfig(model=ClickModel())
    for warning in config.warnings:
        logger.warning("%s: %s", config_path, warning)
    shard = ShardSlice(ShardIndex(args.shard_index), ShardCount(args.shard_count))
    shard.validate(config.model.users, source="command line")
    rate: float | None
    if args.rate == "max":
        rate = None
    elif args.rate is not None:
        rate = args.rate
    else:
        rate = config.rate if config.rate is not None else DEFAULT_RATE
    seed = args.seed if args.seed is not None else config.model.seed
    producer_id = (
        args.producer_id or environ.get("POD_NAME") or (f"{socket.gethostname()}-{shard.index}")
    )
    return RunPlan(
        settings=RunSettings(
            model=config.model,
            shard=shard,
            rate=rate,
            partition_key=args.partition_key or config.kinesis.partition_key,
        ),
        limits=Limits(count=args.count, duration=args.duration),
        seed=seed if seed is not None else derive_seed(),
        producer_id=producer_id,
        config=config,
    )


def make_sink(args: argparse.Namespace, plan: RunPlan, stack: contextlib.ExitStack) -> Sink:
    """The sink the command line asks for (starting the embedded Kinesis if needed)."""
    choice = args.sink
    if choice == "stdout":
        return StdoutSink()
    if choice.startswith("file:"):
        path = choice[len("file:") :]
        if not path:
            raise UsageError("--sink file:PATH needs a path, e.g. --sink file:events.jsonl")
        return FileSink(Path(path))
    if choice != "kinesis":
        raise UsageError(f"--sink must be kinesis, stdout or file:PATH (got {choice!r})")
    from clickstream_generator.sinks.kinesis.sink import KinesisSettings, KinesisSink

    target = plan.config.kinesis
    stream = args.stream or target.stream_name
    endpoint = args.kinesis_endpoint or target.endpoint_url
    region = args.region or target.region
    max_in_flight = args.max_in_flight
    if not stream and not endpoint:
        embedded = _start_embedded(stack)
        stream, endpoint, region = embedded.stream_name, embedded.endpoint_url, "us-east-1"
        # moto can lose records with concurrent writers to one stream.
        max_in_flight = 1
    elif not stream:
        raise UsageError("--kinesis-endpoint needs --stream NAME (the stream to write to)")
    if not region:
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise UsageError("no AWS region: pass --region (or set AWS_REGION) for the stream's region")
    if max_in_flight < 1:
        raise UsageError("--max-in-flight must be at least 1")
    return KinesisSink(
        KinesisSettings(
            stream=stream,
            region=region,
            endpoint_url=endpoint,
            max_in_flight=max_in_flight,
            linger=args.linger_ms / 1000.0,
            record_deadline=args.record_deadline,
            buffer_records=max(1, args.buffer_records),
            buffer_bytes=max(1, args.buffer_mb) * 1024 * 1024,
            ordered=args.ordered,
            aggregate=args.aggregate,
            spool_path=args.spool or Path(f"csgen-undelivered-{plan.producer_id}.jsonl"),
        )
    )


def _start_embedded(stack: contextlib.ExitStack) -> Any:
    try:
        from clickstream_generator.sinks.kinesis.embedded import EmbeddedKinesis
    except ImportError:
        raise UsageError(
            "the embedded Kinesis needs moto: pip install 'csgen[local]', or name a stream "
            "with --stream NAME --region R"
        ) from None
    embedded = stack.enter_context(EmbeddedKinesis())
    print(
        f"csgen: no --stream given: writing to an embedded Kinesis (moto) at "
        f"{embedded.endpoint_url}, stream {embedded.stream_name}; it lives as long as "
        "this process",
        file=sys.stderr,
        flush=True,
    )
    return embedded


def _make_producer(args: argparse.Namespace, plan: RunPlan, sink: Sink) -> Producer:
    logs.bind(producer_id=plan.producer_id, shard=plan.settings.shard.index)
    return Producer(
        plan.settings,
        sink,
        producer_id=plan.producer_id,
        seed=plan.seed,
        limits=plan.limits,
        stop_timeout=args.shutdown_timeout,
    )


def _catch_signals(loop: asyncio.AbstractEventLoop) -> asyncio.Event:
    """SIGINT/SIGTERM set the returned event; a second one exits at once."""
    interrupted = asyncio.Event()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            print("csgen: interrupted again: exiting without flushing", file=sys.stderr)
            os._exit(130)
        interrupted.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    return interrupted


def _release_signals(loop: asyncio.AbstractEventLoop) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)


async def _run(args: argparse.Namespace, plan: RunPlan, sink: Sink) -> int:
    loop = asyncio.get_running_loop()
    producer = _make_producer(args, plan, sink)
    settings = plan.settings
    rate = "as fast as the sink accepts" if settings.rate is None else f"{settings.rate:g} events/s"
    users = settings.shard.users_of(settings.model.users)
    print(
        f"csgen: generating {rate} into {sink.kind} as {plan.producer_id} "
        f"(seed {plan.seed}, users {users}); Ctrl-C stops after flushing",
        file=sys.stderr,
        flush=True,
    )
    started = loop.time()
    interrupted = _catch_signals(loop)
    reporter = None
    try:
        await producer.start()
        if not args.quiet:
            reporter = asyncio.create_task(
                report_progress(producer, started, every=args.progress_every)
            )
        finished = asyncio.create_task(producer.wait_finished())
        stop = asyncio.create_task(interrupted.wait())
        await asyncio.wait({finished, stop}, return_when=asyncio.FIRST_COMPLETED)
        for task in (finished, stop):
            task.cancel()
        if interrupted.is_set():
            print("csgen: stopping: flushing what is buffered", file=sys.stderr, flush=True)
    finally:
        if reporter is not None:
            reporter.cancel()
        await producer.shutdown(args.shutdown_timeout)
        _release_signals(loop)
    return _conclude(args, producer, sink, loop.time() - started)


async def _serve(args: argparse.Namespace, plan: RunPlan, sink: Sink, token: Token | None) -> int:
    """Serve the control API until SIGTERM; generate only when told to (or --autostart)."""
    loop = asyncio.get_running_loop()
    producer = _make_producer(args, plan, sink)
    host, port = args.serve
    app = make_app(producer, ApiSettings(token=token, open_probes=args.open_probes))
    started = loop.time()
    interrupted = _catch_signals(loop)
    background: list[asyncio.Task[None]] = []
    try:
        async with serving.listening(app, host, port) as url:
            what = "generating" if args.autostart else "idle until POST /v1/start"
            auth = "no authentication" if token is None else "bearer token required"
            print(
                f"csgen: control API listening on {url} ({auth}); {what} into {sink.kind} as "
                f"{plan.producer_id}; SIGTERM stops after flushing",
                file=sys.stderr,
                flush=True,
            )
            # The sink opens in the background: /readyz turns ready once it is reachable.
            background.append(asyncio.create_task(serving.keep_opening(producer)))
            if not args.quiet:
                background.append(
                    asyncio.create_task(
                        report_progress(producer, started, every=args.progress_every)
                    )
                )
            if args.autostart:
                # A sink that cannot open leaves the producer failed, visible in /v1/status.
                with contextlib.suppress(SinkError):
                    await producer.start()
            await interrupted.wait()
            print("csgen: stopping: flushing what is buffered", file=sys.stderr, flush=True)
            # NB: the API keeps answering while the producer flushes: status says stopping.
            await producer.shutdown(args.shutdown_timeout)
    finally:
        for task in background:
            task.cancel()
        await producer.shutdown(args.shutdown_timeout)
        _release_signals(loop)
    return _conclude(args, producer, sink, loop.time() - started)


def _conclude(args: argparse.Namespace, producer: Producer, sink: Sink, elapsed: float) -> int:
    """Print the summary; the exit code says whether everything was delivered."""
    status = producer.status()
    print(summary_line(status, elapsed), file=sys.stderr, flush=True)
    reasons = ", ".join(f"{k}: {v}" for k, v in sorted(status["failed_by_reason"].items()))
    logger.info(
        "Run finished: generated %d, acknowledged %d, failed %d%s, pending %d, spooled %d.",
        status["generated"],
        status["acknowledged"],
        status["failed"],
        f" ({reasons})" if reasons else "",
        status["pending"],
        status["spooled"],
    )
    undelivered = status["failed"] + status["pending"]
    if producer.state is State.FAILED:
        print(f"csgen: the run failed: {producer.last_error}", file=sys.stderr)
        return EXIT_UNDELIVERED
    if undelivered:
        spool = sink.describe().get("spool")
        where = f" (see {spool})" if spool else ""
        print(f"csgen: {undelivered:,} events were not delivered{where}", file=sys.stderr)
        return EXIT_UNDELIVERED
    return EXIT_OK


def command_run(args: argparse.Namespace) -> int:
    environ = dict(os.environ)
    token = _control_token(args, environ)
    plan = plan_run(args, environ)
    with contextlib.ExitStack() as stack:
        sink = make_sink(args, plan, stack)
        # Generating allocates by the million per second: see kits.collecting.
        collecting.tune_for_throughput()
        if args.serve is not None:
            return asyncio.run(_serve(args, plan, sink, token))
        return asyncio.run(_run(args, plan, sink))


def _control_token(args: argparse.Namespace, environ: dict[str, str]) -> Token | None:
    """The API token; checked before anything starts, so a bad Secret fails fast."""
    if args.serve is None:
        for flag, given in (
            ("--autostart", args.autostart),
            ("--token-file", args.token_file is not None),
            ("--no-auth", args.no_auth),
        ):
            if given:
                raise UsageError(f"{flag} only applies with --serve [HOST:]PORT")
        return None
    try:
        return load_token(token_file=args.token_file, environ=environ, no_auth=args.no_auth)
    except TokenError as exc:
        raise UsageError(str(exc)) from None


# -- csgen tail --------------------------------------------------------------


def command_tail(args: argparse.Namespace) -> int:
    from clickstream_generator.sinks.kinesis.reading import read_stream
    from clickstream_generator.sinks.kinesis.sink import KinesisSettings, make_client

    region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise UsageError("no AWS region: pass --region (or set AWS_REGION)")
    client = make_client(
        KinesisSettings(stream=args.stream, region=region, endpoint_url=args.kinesis_endpoint)
    )
    shown = 0
    out = sys.stdout.buffer
    try:
        for record in read_stream(
            client, args.stream, from_start=args.position == "oldest", follow=args.follow
        ):
            out.write(record.data + b"\n")
            shown += 1
            if args.count is not None and shown >= args.count:
                break
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        from clickstream_generator.sinks.kinesis.errors import classify

        raise classify(exc, stream=args.stream) from exc
    finally:
        with contextlib.suppress(BrokenPipeError):
            out.flush()
    print(f"csgen: {shown:,} events read from {args.stream}", file=sys.stderr)
    return EXIT_OK


# -- csgen operator -----------------------------------------------------------


def command_operator(args: argparse.Namespace) -> int:
    try:
        from clickstream_operator.handlers.running import run
    except ImportError as exc:
        raise UsageError(
            f"the operator cannot start: {exc}; reinstall csgen with its dependencies"
        ) from None
    return run(args)


# -- entry point -----------------------------------------------------------------

COMMANDS = {
    "run": command_run,
    "tail": command_tail,
    "import-properties": importing.command_import_properties,
    "operator": command_operator,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(fmt=args.log_format, debug=args.debug)
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, UsageError) as exc:
        print(f"csgen: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GeneratorError as exc:
        if args.debug:
            raise
        print(f"csgen: error: {exc}", file=sys.stderr)
        return EXIT_UNDELIVERED
    except KeyboardInterrupt:
        print("csgen: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"csgen: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
            file=sys.stderr,
        )
        return EXIT_UNDELIVERED
