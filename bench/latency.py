"""Token endpoint latency, single client, warm: median and p99 on SQLite and PostgreSQL.

    python bench/latency.py [-n 2000] [--warmup 200] [--db sqlite --db postgres]

Starts the production server (gunicorn, gunicorn.conf.py) on 127.0.0.1 on a free port for each
database, makes a client, sends ``--warmup`` untimed requests and then ``-n`` timed ones one after
another over one keep-alive connection (reopened when the server closes it), and prints the median
and p99. PostgreSQL is BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/m2m_bench), created
when missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from server import BENCH_SECRET_KEY, database, gunicorn, sequential_latency


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--db", action="append", choices=["sqlite", "postgres"])
    args = parser.parse_args(argv)
    failed = False
    for label in args.db or ["sqlite", "postgres"]:
        with database(label, BENCH_SECRET_KEY) as db:
            client = db.make_clients()[0]
            with gunicorn(db) as server:
                result = sequential_latency(server.port, client, n=args.n, warmup=args.warmup)
        print(
            f"latency {label:8s} single client, warm, n={result['n']}: "
            f"median {result['median_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms  "
            f"failures {result['failures']}"
        )
        failed = failed or result["failures"] > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
