"""``clearsky-emulator``: run the ClearSKY API emulator on loopback."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from datetime import datetime, timedelta
from types import FrameType

from .config import DEMO_API_KEY, AccountConfig, EmulatorConfig, LifecycleDurations


def _duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``1d`` or plain seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    t = text.strip().lower()
    if t and t[-1] in units:
        return timedelta(seconds=float(t[:-1]) * units[t[-1]])
    return timedelta(seconds=float(t))


def _iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="clearsky-emulator",
        description=(
            "A local emulator of the ClearSKY Vision API for development and tests (loopback only). "
            f"Without --api-key it accepts the demo key '{DEMO_API_KEY}' (invented, not a real key). "
            "See docs/emulator.md."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; keep it on loopback)")
    p.add_argument("--port", type=int, default=8089, help="port to listen on; 0 picks a free port (default 8089)")
    p.add_argument(
        "--api-key",
        action="append",
        default=None,
        metavar="KEY",
        help=f"an accepted x-api-key; repeatable (default: the demo key {DEMO_API_KEY})",
    )
    p.add_argument(
        "--euro-credits", type=float, default=10_000.0, help="initial order credits (EUR) per key (default 10000)"
    )
    p.add_argument(
        "--processing-units", type=float, default=10_000.0, help="initial processing units per key (default 10000)"
    )
    p.add_argument("--euro-credit-limit", type=int, default=0, help="order-credit overdraft limit per key (default 0)")
    p.add_argument("--max-concurrent", type=int, default=4, help="MaxConcurrentConnections per key (default 4)")
    p.add_argument("--max-area-km2", type=int, default=10_000, help="MaxCompositeAreaKm2 per key (default 10000)")
    p.add_argument("--max-bands", type=int, default=12, help="MaxTotalBands per key (default 12)")
    p.add_argument(
        "--manual-review",
        action="store_true",
        help="orders start in Review for --review-duration instead of being accepted at creation",
    )
    p.add_argument("--auto-deny", action="store_true", help="deny every order after review (invented status 'Denied')")
    p.add_argument(
        "--review-duration", type=_duration, default=timedelta(hours=1), help="emulated time in Review (default 1h)"
    )
    p.add_argument(
        "--preparing-duration", type=_duration, default=timedelta(minutes=30), help="time in Preparing (default 30m)"
    )
    p.add_argument(
        "--processing-duration",
        type=_duration,
        default=timedelta(hours=2),
        help="minimum time after Preparing before any image is produced (default 2h)",
    )
    p.add_argument(
        "--production-delay",
        type=_duration,
        default=timedelta(hours=6),
        help="image date D is produced at D + 1 day + this (default 6h)",
    )
    p.add_argument("--admin", action="store_true", help="enable the /_emulator/... control endpoints")
    p.add_argument(
        "--admin-token",
        default=None,
        help="require this value in x-admin-token for the admin endpoints (default: loopback clients only)",
    )
    p.add_argument(
        "--clock-speed", type=float, default=1.0, help="emulated seconds per real second (default 1; 0 freezes)"
    )
    p.add_argument("--start-time", type=_iso, default=None, help="emulated start time, ISO-8601 (default: now, UTC)")
    p.add_argument(
        "--state-file", default=None, help="SQLite file keeping orders, balances and the clock across restarts"
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="arm a fault, repeatable, e.g. '503,path=/api/tasking/orders,method=POST,times=2' "
        "(kinds: 429 500 502 503 504 latency reset drop_after_commit truncate trickle; keys: path method times "
        "retry_after delay bytes chunk)",
    )
    p.add_argument(
        "--concurrency-error",
        type=int,
        choices=(429, 1003),
        default=429,
        help="answer to requests beyond MaxConcurrentConnections: HTTP 429 or HTTP 400 with code 1003 (default 429)",
    )
    p.add_argument("--concurrency-retry-after", type=int, default=None, help="add Retry-After: N to concurrency 429s")
    p.add_argument(
        "--no-bearer", action="store_true", help="do not accept 'Authorization: Bearer KEY' (x-api-key only)"
    )
    p.add_argument(
        "--order-geometry-echo",
        choices=("exact", "bbox"),
        default="exact",
        help="how order answers echo a polygon order's Wkt: as sent, or each polygon's bounding box (default exact)",
    )
    p.add_argument(
        "--order-details-methods",
        choices=("both", "post", "get"),
        default="both",
        help="which methods serve /api/tasking/orders/details; the other answers 405 (default both)",
    )
    p.add_argument("--tls-cert", metavar="PEM", default=None, help="serve HTTPS with this certificate (and --tls-key)")
    p.add_argument("--tls-key", metavar="PEM", default=None, help="the private key of --tls-cert")
    p.add_argument("--quiet", action="store_true", help="no access log")
    return p


#: Options whose value goes to the ``EmulatorConfig`` field of the same name as given.
_SAME_NAMED_OPTIONS = (
    "host",
    "port",
    "admin",
    "admin_token",
    "clock_speed",
    "start_time",
    "state_file",
    "concurrency_error",
    "concurrency_retry_after",
    "order_geometry_echo",
    "order_details_methods",
)


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    keys = args.api_key or [DEMO_API_KEY]
    accounts = [
        AccountConfig(
            key=k,
            euro_credit_amount=args.euro_credits,
            credit_amount=args.processing_units,
            euro_credit_limit=args.euro_credit_limit,
            max_concurrent_connections=args.max_concurrent,
            max_composite_area_km2=args.max_area_km2,
            max_total_bands=args.max_bands,
            auto_accept=not args.manual_review,
            auto_deny=args.auto_deny,
        )
        for k in dict.fromkeys(keys)
    ]
    return EmulatorConfig(
        **{name: getattr(args, name) for name in _SAME_NAMED_OPTIONS},
        accounts=accounts,
        faults=list(args.fault),
        accept_bearer=not args.no_bearer,
        durations=LifecycleDurations(
            review=args.review_duration,
            preparing=args.preparing_duration,
            processing=args.processing_duration,
            production_delay=args.production_delay,
        ),
        access_log=not args.quiet,
        tls_certfile=args.tls_cert,
        tls_keyfile=args.tls_key,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        from .faults import parse_fault_spec

        for spec in config.faults:
            parse_fault_spec(spec)
    except ValueError as exc:
        print(f"clearsky-emulator: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    from .server import EmulatorServer

    server = EmulatorServer(config)

    def _stop(signum: int, frame: FrameType | None) -> None:
        server._server.should_exit = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server.start()
    print(f"ClearSKY emulator serving at {server.url}", flush=True)
    try:
        server.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
