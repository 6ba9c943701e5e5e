#!/usr/bin/env python3
"""Runs the microbenchmark's workloads on Dask distributed and on Sunray.

Dask side: a local cluster of 2 worker processes with 1 thread each
(loopback, no dashboard), driven from this process. Each workload is the Dask
equivalent of the one in bench/microbenchmark.cc, reported under the same
metric name and measured the same way: R runs of about S seconds each (after
one warm-up batch), median rate and [lowest .. highest].

Sunray side: runs the bench/microbenchmark binary with the same --seconds,
--repeats and --filter and parses its lines (`name rate unit [min .. max]`,
comments start with '#').

Then prints both side by side with the ratio Sunray/Dask ("—" where one side
has no equivalent).

    python3 bench/dask_compare.py [--seconds S] [--repeats R] [--filter NAME]
                                  [--microbenchmark PATH] [--dask-only]
                                  [--timeout SECONDS] [--markdown]

Needs Debian's python3-distributed: run scripts/install-bench-deps.sh. On a
machine where `python3` is not Debian's interpreter (pyenv, a venv), the
script re-runs itself under /usr/bin/python3 when that one has distributed.
"""

import argparse
import itertools
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MICROBENCHMARK = os.path.join(REPO_ROOT, "build", "bench", "microbenchmark")
SYSTEM_PYTHON = "/usr/bin/python3"
REEXEC_GUARD = "SUNRAY_DASK_COMPARE_REEXEC"
INSTALL_HINT = "run scripts/install-bench-deps.sh (installs Debian's python3-distributed)"

KIB = 1024
BIG_OBJECT_BYTES = 256 << 20
WORKLOADS_IN_MICROBENCHMARK = 16

# The microbenchmark's metrics, in its order, with their units.
METRICS = [
    ("single_client_tasks_sync", "tasks/s"),
    ("single_client_tasks_async", "tasks/s"),
    ("multi_client_tasks_async", "tasks/s"),
    ("1_1_actor_calls_sync", "calls/s"),
    ("1_1_actor_calls_async", "calls/s"),
    ("1_1_actor_calls_concurrent", "calls/s"),
    ("1_n_actor_calls_async", "calls/s"),
    ("n_n_actor_calls_async", "calls/s"),
    ("n_n_actor_calls_with_arg_async", "calls/s"),
    ("single_client_put_calls_Plasma_Store", "calls/s"),
    ("single_client_get_calls_Plasma_Store", "calls/s"),
    ("multi_client_put_calls_Plasma_Store", "calls/s"),
    ("single_client_put_gigabytes", "GB/s"),
    ("single_client_tasks_and_get_batch", "tasks/s"),
    ("single_client_wait_1k_refs", "calls/s"),
    ("single_client_get_object_containing_10k_refs", "calls/s"),
]

# One microbenchmark output line: name, rate, unit, [min .. max].
LINE_PATTERN = re.compile(
    r"^(?P<name>\S+)\s+(?P<rate>[-+0-9.eE]+)\s+(?P<unit>\S+)"
    r"\s+\[(?P<low>[-+0-9.eE]+)\s*\.\.\s*(?P<high>[-+0-9.eE]+)\]\s*$"
)


def noop():
    """A task that does nothing (single_client_tasks_sync)."""


def identity(x):
    """A task that returns its argument (the async task workloads)."""
    return x


class BenchActor:
    """The actor of the actor workloads."""

    def noop(self):
        """Runs on the worker's actor thread, one call at a time."""

    async def noop_async(self):
        """Runs on the worker's event loop, so calls overlap (Dask's actor concurrency)."""

    def with_arg(self, value):
        """Takes a small value, like the microbenchmark's Actor::WithArg."""
        return len(value)


class Result:
    """The median rate of a workload's runs and the lowest and highest."""

    def __init__(self, rate, unit, low, high):
        self.rate = rate
        self.unit = unit
        self.low = low
        self.high = high

    def line(self, name):
        """Formats the result like a microbenchmark output line."""
        return (
            f"{name:<48}{self.rate:>14.2f} {self.unit}  [{self.low:.2f} .. {self.high:.2f}]"
        )


def import_distributed():
    """Returns the distributed module, re-running under Debian's python3 if needed.

    Exits with a hint to run scripts/install-bench-deps.sh when no interpreter
    has it.
    """
    try:
        import distributed  # pylint: disable=import-outside-toplevel

        return distributed
    except ImportError:
        pass
    other_python = (
        os.path.exists(SYSTEM_PYTHON)
        and os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON)
        and not os.environ.get(REEXEC_GUARD)
    )
    if other_python:
        print(
            f"# {sys.executable} has no 'distributed' module; re-running under {SYSTEM_PYTHON}",
            file=sys.stderr,
            flush=True,
        )
        os.environ[REEXEC_GUARD] = "1"
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON, os.path.abspath(__file__)] + sys.argv[1:])
    sys.exit(
        f"error: Python module 'distributed' not found for {sys.executable}: {INSTALL_HINT}; "
        f"the package serves Debian's {SYSTEM_PYTHON}"
    )


def measure_rate(seconds, batch):
    """Runs `batch` (which returns how many operations it did) for `seconds`.

    One warm-up batch first, as in microbenchmark.cc; returns operations per second.
    """
    batch()
    start = time.monotonic()
    operations = 0.0
    while True:
        operations += batch()
        elapsed = time.monotonic() - start
        if elapsed >= seconds:
            return operations / elapsed


def on_threads(threads, work):
    """Runs `work` on `threads` threads at once; returns the sum of their counts."""
    counts = [0.0] * threads

    def run(index):
        counts[index] = work()

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sum(counts)


def report(options, results, name, unit, batch):
    """Measures one workload unless --filter excludes it; records and prints the result."""
    if options.filter and options.filter not in name:
        return
    rates = sorted(measure_rate(options.seconds, batch) for _ in range(options.repeats))
    # rates[len // 2], like microbenchmark.cc (the upper median for an even count).
    result = Result(rates[len(rates) // 2], unit, rates[0], rates[-1])
    results[name] = result
    print(result.line(name), file=sys.stdout if options.dask_only else sys.stderr, flush=True)


def run_dask(options):
    """Runs the Dask equivalents on a 2-worker local cluster; returns {metric: Result}."""
    distributed = import_distributed()
    clients = max(2, os.cpu_count() or 1)
    results = {}
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    client = distributed.Client(cluster)
    try:
        print(
            f"# dask: distributed {distributed.__version__}, Python {sys.version.split()[0]}, "
            f"LocalCluster 2 worker processes x 1 thread, {clients} client threads, "
            f"{options.repeats} runs of {options.seconds} s each (median [min .. max])",
            file=sys.stdout if options.dask_only else sys.stderr,
            flush=True,
        )
        run_dask_workloads(options, distributed, client, clients, results)
    finally:
        client.close()
        cluster.close()
    return results


def run_dask_workloads(options, distributed, client, clients, results):
    """The workloads of microbenchmark.cc that Dask has an equivalent for, in its order."""

    def tasks_async():
        futures = [client.submit(identity, i, pure=False) for i in range(1000)]
        client.gather(futures)
        return 1000.0

    def tasks_sync():
        for _ in range(100):
            client.submit(noop, pure=False).result()
        return 100.0

    report(options, results, "single_client_tasks_sync", "tasks/s", tasks_sync)
    report(options, results, "single_client_tasks_async", "tasks/s", tasks_async)
    report(
        options,
        results,
        "multi_client_tasks_async",
        "tasks/s",
        lambda: on_threads(clients, tasks_async),
    )

    def new_actor():
        # pure=False: otherwise every submit of BenchActor names the same actor.
        return client.submit(BenchActor, actor=True, pure=False).result()

    actor = new_actor()

    def actor_calls_sync():
        for _ in range(100):
            actor.noop().result()
        return 100.0

    def actor_calls(handle, method="noop"):
        calls = [getattr(handle, method)() for _ in range(1000)]
        for call in calls:
            call.result()
        return 1000.0

    report(options, results, "1_1_actor_calls_sync", "calls/s", actor_calls_sync)
    report(options, results, "1_1_actor_calls_async", "calls/s", lambda: actor_calls(actor))
    concurrent = new_actor()
    report(
        options,
        results,
        "1_1_actor_calls_concurrent",
        "calls/s",
        lambda: actor_calls(concurrent, "noop_async"),
    )

    actors = [new_actor() for _ in range(clients)]

    def one_to_n():
        calls = [actors[i % len(actors)].noop() for i in range(1000)]
        for call in calls:
            call.result()
        return 1000.0

    report(options, results, "1_n_actor_calls_async", "calls/s", one_to_n)
    next_actor = itertools.count()
    report(
        options,
        results,
        "n_n_actor_calls_async",
        "calls/s",
        lambda: on_threads(clients, lambda: actor_calls(actors[next(next_actor) % len(actors)])),
    )
    small = bytes([7]) * KIB

    def with_arg():
        # Dask actors take arguments by value (they do not resolve futures).
        handle = actors[next(next_actor) % len(actors)]
        calls = [handle.with_arg(small) for _ in range(1000)]
        for call in calls:
            call.result()
        return 1000.0

    report(
        options,
        results,
        "n_n_actor_calls_with_arg_async",
        "calls/s",
        lambda: on_threads(clients, with_arg),
    )

    kilobyte = bytes([1]) * KIB

    def puts():
        # hash=False: otherwise equal data is scattered once under one key.
        for _ in range(1000):
            client.scatter(kilobyte, hash=False)
        return 1000.0

    def gets():
        for _ in range(1000):
            small_future.result()
        return 1000.0

    small_future = client.scatter(small, hash=False)
    report(options, results, "single_client_put_calls_Plasma_Store", "calls/s", puts)
    report(options, results, "single_client_get_calls_Plasma_Store", "calls/s", gets)
    report(
        options,
        results,
        "multi_client_put_calls_Plasma_Store",
        "calls/s",
        lambda: on_threads(clients, puts),
    )
    big = bytes([3]) * BIG_OBJECT_BYTES

    def put_gigabytes():
        # direct=True: straight to a worker, not relayed through the scheduler.
        client.scatter(big, hash=False, direct=True)
        return BIG_OBJECT_BYTES / 1e9

    report(options, results, "single_client_put_gigabytes", "GB/s", put_gigabytes)
    report(options, results, "single_client_tasks_and_get_batch", "tasks/s", tasks_async)
    ready = client.scatter(list(range(1000)), hash=False)

    def wait_all():
        distributed.wait(ready)
        return 1.0

    report(options, results, "single_client_wait_1k_refs", "calls/s", wait_all)
    # single_client_get_object_containing_10k_refs: no Dask equivalent (an
    # object whose value holds futures).


def parse_microbenchmark(text):
    """Parses microbenchmark output; returns ({metric: Result}, [comment lines])."""
    results = {}
    comments = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            comments.append(line)
            continue
        match = LINE_PATTERN.match(line)
        if match:
            results[match["name"]] = Result(
                float(match["rate"]), match["unit"], float(match["low"]), float(match["high"])
            )
        else:
            print(f"# sunray: unrecognised line: {line}", file=sys.stderr)
    return results, comments


def stop_process_group(process):
    """Stops the microbenchmark and what it started (its own process group)."""
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def check_microbenchmark(binary):
    """Exits with a clear message unless `binary` is an executable file."""
    if not os.path.isfile(binary) or not os.access(binary, os.X_OK):
        sys.exit(
            f"error: microbenchmark binary not found or not executable: {binary}\n"
            "build it with `ninja -C build bench/microbenchmark` (or scripts/build.sh), "
            "pass --microbenchmark PATH, or use --dask-only"
        )


def run_sunray(options):
    """Runs the microbenchmark binary; returns ({metric: Result}, [comments], problem or None).

    Its lines are echoed to stderr as they come; a run that exceeds --timeout
    is stopped and what it printed so far is kept.
    """
    check_microbenchmark(options.microbenchmark)
    command = [options.microbenchmark, "--seconds", str(options.seconds)]
    command += ["--repeats", str(options.repeats)]
    if options.filter:
        command += ["--filter", options.filter]
    print(f"# sunray: {' '.join(command)}", file=sys.stderr, flush=True)
    # Its own process group, so that a timeout stops the cluster it started too.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    lines = []

    def read_output():
        for line in process.stdout:
            lines.append(line)
            print(line, end="", file=sys.stderr, flush=True)

    reader = threading.Thread(target=read_output, daemon=True)
    reader.start()
    problem = None
    try:
        process.wait(timeout=options.timeout if options.timeout > 0 else None)
    except subprocess.TimeoutExpired:
        problem = f"timed out after {options.timeout:.0f} s (stopped)"
        stop_process_group(process)
    except KeyboardInterrupt:
        stop_process_group(process)
        raise
    reader.join(timeout=10)
    if problem is None and process.returncode != 0:
        problem = f"exited with status {process.returncode}"
    results, comments = parse_microbenchmark("".join(lines))
    return results, comments, problem


def format_rate(result):
    """A rate with its unit: thousands separators for large rates, 2 decimals for small."""
    if result is None:
        return "—"
    number = f"{result.rate:,.0f}" if result.rate >= 100 else f"{result.rate:.2f}"
    return f"{number} {result.unit}"


def format_ratio(sunray, dask):
    """Sunray's rate over Dask's, or "—" when either is missing."""
    if sunray is None or dask is None or dask.rate <= 0:
        return "—"
    return f"{sunray.rate / dask.rate:.2f}x"


def print_table(sunray, dask, markdown):
    """Prints metric, Sunray rate, Dask rate and the ratio, one row per metric."""
    names = [name for name, _ in METRICS]
    names += sorted(set(sunray) - set(names)) + sorted(set(dask) - set(sunray) - set(names))
    rows = [
        (name, format_rate(sunray.get(name)), format_rate(dask.get(name)),
         format_ratio(sunray.get(name), dask.get(name)))
        for name in names
        if name in sunray or name in dask
    ]
    header = ("metric", "Sunray", "Dask", "Sunray/Dask")
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|---|---:|---:|---:|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(4)]
    print(f"{header[0]:<{widths[0]}}  " + "  ".join(
        f"{header[i]:>{widths[i]}}" for i in range(1, 4)))
    for row in rows:
        print(f"{row[0]:<{widths[0]}}  " + "  ".join(
            f"{row[i]:>{widths[i]}}" for i in range(1, 4)))


def parse_args():
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description="Runs the microbenchmark workloads on Dask distributed (2-worker local "
        "cluster) and on Sunray, and prints both side by side."
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one run (2)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per workload (3)")
    parser.add_argument("--filter", default="", help="only metrics whose name contains this")
    parser.add_argument(
        "--microbenchmark",
        default=DEFAULT_MICROBENCHMARK,
        help="Sunray's microbenchmark binary (build/bench/microbenchmark)",
    )
    parser.add_argument(
        "--dask-only",
        action="store_true",
        help="run only the Dask side; print its lines in the microbenchmark's format",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="stop the Sunray run after this many seconds, keeping what it printed "
        "(default: generous, from --seconds and --repeats; 0: none)",
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    options = parser.parse_args()
    if options.seconds <= 0 or options.repeats < 1:
        parser.error("--seconds must be positive and --repeats at least 1")
    if options.timeout is None:
        runs = WORKLOADS_IN_MICROBENCHMARK * (options.repeats + 1)
        options.timeout = 120 + 4 * runs * options.seconds
    options.microbenchmark = os.path.abspath(options.microbenchmark)
    return options


def main():
    """Runs the Dask side, then the Sunray side, then prints the comparison."""
    options = parse_args()
    import_distributed()  # before any work: may re-run this script under Debian's python3
    if not options.dask_only:
        check_microbenchmark(options.microbenchmark)  # before the long Dask side
    dask = run_dask(options)
    if options.dask_only:
        return 0
    sunray, comments, problem = run_sunray(options)
    print()
    for comment in comments:
        print(comment.replace("# ", "# sunray ", 1))
    if problem:
        print(f"# sunray: the microbenchmark {problem}; metrics it did not print show as —")
    print()
    print_table(sunray, dask, options.markdown)
    return 1 if problem else 0


if __name__ == "__main__":
    sys.exit(main())
