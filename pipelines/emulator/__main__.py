"""Runs the emulator by hand: `python -m pipelines.emulator --port 8787`."""

from __future__ import annotations

import argparse
import sys
import time

from pipelines.emulator import EmulatorServer, World


def main(argv: list[str] | None = None) -> int:
    """Serves an emulated World on 127.0.0.1 until interrupted; returns 2 when the port is taken."""
    parser = argparse.ArgumentParser(
        prog="emulator", description="Serve an emulated Recoup API on 127.0.0.1."
    )
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--accounts", type=int, default=5)
    parser.add_argument("--runs", type=int, default=120, help="runs generated per account")
    parser.add_argument("--profile", choices=("documented", "observed"), default="documented")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument(
        "--not-found-delay",
        type=float,
        default=2.0,
        help="seconds before the observed profile answers an unknown run id",
    )
    parser.add_argument("--live", action="store_true",
                        help="the world moves with the clock; admin endpoints under /admin (docs/emulator.md)")  # fmt: skip
    args = parser.parse_args(argv)
    world = World(
        accounts=args.accounts,
        runs_per_account=args.runs,
        seed=args.seed,
        profile=args.profile,
        not_found_delay=args.not_found_delay,
    )
    world.latency = args.latency
    try:
        server = EmulatorServer(world, port=args.port).start()
    except OSError as exc:
        print(f"emulator: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"Recoup API emulator ({args.profile} profile) on {server.url}", flush=True)
    print(f"demo key (reads every account): {world.demo_key}")
    print("accounts:")
    for account in world.account_ids[:5]:
        print(f"  {account}")
    print(f"try: curl -H 'x-api-key: {world.demo_key}' '{server.url}/api/tasks/runs?limit=5'", flush=True)
    if args.live:
        from pipelines.emulator import live

        live.start(world)
        print(f"live: the world moves every {live.STEP_SECONDS:g} s; e.g. curl -X POST "
              f"'{server.url}/admin/down?seconds=60'", flush=True)  # fmt: skip
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
