"""Profile the token endpoint under load: ``make bench-profile`` (or ``python bench/profile.py``).

Starts gunicorn against PostgreSQL (or ``--db sqlite``), drives it with wrk at ``-c`` connections
while ``py-spy record --subprocesses`` samples every worker, and prints where the workers spent
their time: the functions with the most samples on top of the stack (self) and anywhere on the
stack (inclusive), as a percentage of all samples.
py-spy is a development tool: ``make bench-profile`` installs it into the virtualenv.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import run_wrk
from server import BENCH_SECRET_KEY, PYTHON, database, gunicorn


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="postgres", choices=["sqlite", "postgres"])
    parser.add_argument("-c", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--gil", action="store_true", help="sample only threads holding the GIL (Python CPU)"
    )
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(PYTHON).with_name("py-spy"))
    if not Path(py_spy).exists():
        print("py-spy is missing: pip install py-spy (make bench-profile does it)", file=sys.stderr)
        return 2
    with database(args.db, BENCH_SECRET_KEY) as db:
        client = db.make_clients(algorithm="RS256")[0]
        with gunicorn(db) as server, tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "stacks.txt"
            record = [
                py_spy,
                "record",
                "--pid",
                str(server.process.pid),
                "--subprocesses",
                "--duration",
                str(args.duration),
                "--rate",
                "250",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(raw),
                *(["--gil"] if args.gil else []),
            ]
            spy = subprocess.Popen(record, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            result: dict = {}
            load = threading.Thread(
                target=lambda: result.update(run_wrk(server, client, args.c, args.duration))
            )
            load.start()
            load.join()
            spy.wait()
            report(raw, args.top)
    print(
        f"\nunder profile: {result.get('tokens_per_s', 0):.0f} tokens/s, errors "
        f"{result.get('errors')}"
    )
    return 0


def report(raw: Path, top: int) -> None:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [frame for frame in stack.split(";")[1:] if frame]  # drop the process frame
        if not frames:
            continue
        total += count
        own[_short(frames[-1])] += count
        for name in {_short(frame) for frame in frames}:
            inclusive[name] += count
    print(f"{total} samples")
    print("\nself (top of stack):")
    for name, count in own.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {name}")
    print("\ninclusive:")
    for name, count in inclusive.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {name}")


def _short(frame: str) -> str:
    # "function (path/to/file.py:123)" -> "function (file.py)"
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if parts else path
    return f"{name} ({short})"


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
