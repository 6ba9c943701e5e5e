#!/usr/bin/env python3
"""Sunray against Ray on this machine, and Dask as bench/dask_compare.py does.

In one go, one after the other:

  1. Ray's own `ray microbenchmark` (Python API) from the benchmark venv
     (.bench-venv/, made by scripts/install-bench-deps.sh). It times itself:
     each metric is the mean of 4 runs of 2 s after a 10 s pause, whatever
     --seconds says; --filter picks its metrics through TESTS_TO_RUN.
  2. bench/microbenchmark.cc built against Ray's C++ API from the ray-cpp
     wheel (an executable and the same code as a shared library, into
     build-ray-bench/), run against a cluster of `ray start --head`, whose
     workers load the library through --ray_code_search_path.
  3. The same source built against Sunray (build/bench/microbenchmark).
  4. bench/dask_compare.py --dask-only.

Then prints the four side by side per metric name, with Sunray's rate over
each of the others. Ray listens on loopback only, keeps its session files in
a temporary directory, and every Ray process is stopped (`ray stop --force`)
when the script ends, also on errors and Ctrl-C.

    bash scripts/install-bench-deps.sh   # once: Dask, and Ray in .bench-venv/
    python3 bench/ray_compare.py [--seconds S] [--repeats R] [--filter NAME]
                                 [--skip ray-python,ray-cpp,sunray,dask]
                                 [--markdown]

A whole run takes about 15-20 minutes on 2 cores, most of it `ray
microbenchmark` (its 10 s pauses, its Ray client part), which runs to its
end even with --filter. Rows that only Ray Python has come last; under the
table, a list of the metrics where its workload differs from ours.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading

import dask_compare  # bench/, beside this file: its parser, formatting and metric list

REPO_ROOT = dask_compare.REPO_ROOT
VENV = os.environ.get("SUNRAY_BENCH_VENV", os.path.join(REPO_ROOT, ".bench-venv"))
RAY = os.path.join(VENV, "bin", "ray")
SOURCE = os.path.join(REPO_ROOT, "bench", "microbenchmark.cc")
SCRATCH = os.path.join(REPO_ROOT, "build-ray-bench")
INSTALL_HINT = "run scripts/install-bench-deps.sh"
SIDES = ("ray-python", "ray-cpp", "sunray", "dask")

# `ray microbenchmark` prints "<name> per second <mean> +- <sd>".
RAY_PYTHON_LINE = re.compile(
    r"^(?P<name>.+?) per second (?P<mean>[-+0-9.eE]+) \+- (?P<sd>[-+0-9.eE]+)\s*$"
)
# Ray reports these in other units than the microbenchmark: its "tasks and
# get batch" counts batches of 1,000 tasks per second, ours tasks per second.
RAY_PYTHON_SCALE = {"single_client_tasks_and_get_batch": 1000}
# Where `ray microbenchmark` does other work than bench/microbenchmark.cc
# under the same name (from Ray's ray/_private/ray_perf.py); printed under
# the table. Ray C++ runs our own source, so it does the same work as Sunray.
RAY_PYTHON_NOTES = {
    "multi_client_tasks_async": "4 actors each submit and get 10,000 tasks (ours: driver threads)",
    "1_n_actor_calls_async": "one actor calls cores/2 actors (ours: the driver calls one per core)",
    "n_n_actor_calls_async": "4 tasks each call cores/2 actors (ours: driver threads)",
    "n_n_actor_calls_with_arg_async": "actors call actors with a put int (ours: a 1 KiB vector)",
    "single_client_put_calls_Plasma_Store": "puts the int 0 (ours: a 1 KiB vector)",
    "multi_client_put_calls_Plasma_Store": "10 tasks put 100 ints each (ours: driver threads)",
    "single_client_put_gigabytes": "puts an 800 MB numpy array (ours: a 256 MiB vector)",
    "single_client_wait_1k_refs": "1,000 tasks, then 1,000 waits for one ref each, per call "
    "(ours: one Wait for 1,000 finished puts)",
    "single_client_get_object_containing_10k_refs": "a task put the refs (ours: the driver)",
}
# The metric names in Ray's benchmark sources: timeit("<name>", ...).
RAY_PYTHON_NAME = re.compile(r'timeit\(\s*"([^"]+)"')


def metric_name(ray_name):
    """Ray's "1:1 actor calls sync" is our 1_1_actor_calls_sync."""
    return re.sub(r"[^A-Za-z0-9]+", "_", ray_name).strip("_")


def ray_environment(temp_dir):
    """The environment for Ray's commands: its session files under temp_dir,
    the node on loopback (this variable makes Ray take 127.0.0.1 as the node
    address, as it does on macOS), no usage reporting, and no token
    authentication: otherwise ray.init() writes a token to ~/.ray, a later
    `ray start` requires it, and Ray's C++ driver, which sends none, aborts
    ("Authentication token is missing or incorrect")."""
    env = dict(os.environ)
    env["PATH"] = os.path.join(VENV, "bin") + os.pathsep + env.get("PATH", "")
    env["RAY_TMPDIR"] = temp_dir
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env["RAY_AUTH_MODE"] = "disabled"
    return env


def run_command(label, command, timeout, env=None):
    """Runs a benchmark command in its own process group, echoing its output
    to stderr; returns (output, problem or None). Stopped after `timeout`."""
    print(f"# {label}: {' '.join(command)}", file=sys.stderr, flush=True)
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    lines = []

    def read_output():
        for line in process.stdout:
            lines.append(line)
            print(line, end="", file=sys.stderr, flush=True)

    reader = threading.Thread(target=read_output, daemon=True)
    reader.start()
    problem = None
    try:
        process.wait(timeout=timeout if timeout > 0 else None)
    except subprocess.TimeoutExpired:
        problem = f"timed out after {timeout:.0f} s (stopped)"
    finally:
        dask_compare.stop_process_group(process)
    reader.join(timeout=10)
    if problem is None and process.returncode != 0:
        problem = f"exited with status {process.returncode}"
    return "".join(lines), problem


def ray_python_pattern(options):
    """TESTS_TO_RUN (one substring of Ray's names) for --filter: a matching
    Ray name found in all the matching ones, else the filter with spaces for
    underscores if that is; else "" (all metrics, then filtered here). None
    when no Ray metric matches."""
    if not options.filter:
        return ""
    perf_dir = os.path.join(ray_package_dir(), "_private")
    names = []
    for source in ("ray_perf.py", "ray_client_microbenchmark.py"):
        with open(os.path.join(perf_dir, source), encoding="utf-8") as file:
            names += RAY_PYTHON_NAME.findall(file.read())
    matched = [name for name in names if options.filter in metric_name(name)]
    if not matched:
        return None
    for candidate in sorted(matched, key=len)[:1] + [options.filter.replace("_", " ")]:
        if matched and all(candidate in name for name in matched):
            return candidate
    print(
        f"# ray-python: no single TESTS_TO_RUN pattern for --filter {options.filter} "
        f"({len(matched)} Ray metrics match); running all of them",
        file=sys.stderr,
    )
    return ""


def ray_package_dir():
    """The installed ray package's directory in the venv."""
    python = os.path.join(VENV, "bin", "python")
    script = "import os, ray; print(os.path.dirname(ray.__file__))"
    result = subprocess.run([python, "-c", script], check=True, capture_output=True, text=True)
    return result.stdout.strip()


def run_ray_python(options, env):
    """Ray's own `ray microbenchmark`; returns ({metric: Result}, comments, problem)."""
    env = dict(env)
    pattern = ray_python_pattern(options)
    if pattern is None:
        comment = f"# ray-python: no metric of `ray microbenchmark` matches {options.filter}"
        return {}, [comment], None
    if pattern:
        env["TESTS_TO_RUN"] = pattern
    try:
        output, problem = run_command(
            "ray-python", [RAY, "microbenchmark"], options.ray_python_timeout, env
        )
    finally:
        stop_ray(env)  # in case it was stopped halfway
    results = {}
    units = dict(dask_compare.METRICS)
    for line in output.splitlines():
        match = RAY_PYTHON_LINE.match(line.strip())
        if not match:
            continue
        name = metric_name(match["name"])
        if options.filter and options.filter not in name:
            continue
        scale = RAY_PYTHON_SCALE.get(name, 1)
        mean, sd = float(match["mean"]) * scale, float(match["sd"]) * scale
        unit = units.get(name, "GB/s" if "gigabytes" in name else "/s")
        results[name] = dask_compare.Result(mean, unit, mean - sd, mean + sd)
    comment = "# ray-python: `ray microbenchmark`, Ray's own timing: mean of 4 runs of 2 s"
    return results, [comment], problem


def ray_cpp_paths():
    """Ray's C++ include and library directories, as `ray cpp --show-library-path` says."""
    result = subprocess.run(
        [RAY, "cpp", "--show-library-path"], capture_output=True, text=True, check=True
    )
    text = result.stdout + result.stderr
    include = re.search(r"Ray C\+\+ include path (\S+)", text)
    library = re.search(r"Ray C\+\+ library path (\S+)", text)
    if not include or not library:
        raise RuntimeError(f"no paths in `ray cpp --show-library-path`'s output:\n{text}")
    return include[1], library[1]


def build_ray_cpp():
    """Builds microbenchmark.cc against Ray's C++ API into build-ray-bench/:
    the driver executable and the same code as a shared library for Ray's
    workers. Rebuilds when the source or Ray's library is newer."""
    include, library = ray_cpp_paths()
    os.makedirs(SCRATCH, exist_ok=True)
    objects = os.path.join(SCRATCH, "microbenchmark.o")
    binary = os.path.join(SCRATCH, "microbenchmark")
    shared = os.path.join(SCRATCH, "microbenchmark.so")
    inputs = [SOURCE, os.path.join(library, "libray_api.so")]
    newest_input = max(os.path.getmtime(path) for path in inputs)
    if all(os.path.exists(path) and os.path.getmtime(path) >= newest_input
           for path in (binary, shared)):
        return binary, shared
    compiler = os.environ.get("CXX", "g++")
    # libray_api.so is built with the old libstdc++ string ABI.
    compile_flags = ["-std=c++17", "-O2", "-g", "-fPIC", "-D_GLIBCXX_USE_CXX11_ABI=0",
                     "-I", include]
    link_flags = ["-L", library, "-lray_api", f"-Wl,-rpath,{library}", "-pthread"]
    steps = [
        [compiler, *compile_flags, "-c", SOURCE, "-o", objects],
        [compiler, objects, "-o", binary, *link_flags],
        [compiler, "-shared", objects, "-o", shared, *link_flags],
    ]
    for step in steps:
        print(f"# ray-cpp build: {' '.join(step)}", file=sys.stderr, flush=True)
        subprocess.run(step, check=True)
    return binary, shared


def free_port():
    """A TCP port free on loopback right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def microbenchmark_arguments(options):
    """--seconds, --repeats and --filter for bench/microbenchmark."""
    arguments = ["--seconds", str(options.seconds), "--repeats", str(options.repeats)]
    return arguments + (["--filter", options.filter] if options.filter else [])


def run_ray_cpp(options, env):
    """The microbenchmark on Ray's C++ API against `ray start --head`."""
    binary, shared = build_ray_cpp()
    port = free_port()
    command = [binary, f"--ray_address=127.0.0.1:{port}", f"--ray_code_search_path={shared}"]
    try:
        subprocess.run(
            [RAY, "start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1",
             "--include-dashboard=false", "--disable-usage-stats"],
            env=env, check=True, stdout=subprocess.DEVNULL,
        )
        output, problem = run_command(
            "ray-cpp", command + microbenchmark_arguments(options), options.timeout, env
        )
    finally:
        stop_ray(env)
    results, comments = dask_compare.parse_microbenchmark(output)
    return results, comments, problem


def run_sunray(options):
    """The microbenchmark built against Sunray."""
    dask_compare.check_microbenchmark(options.microbenchmark)
    command = [options.microbenchmark] + microbenchmark_arguments(options)
    output, problem = run_command("sunray", command, options.timeout)
    results, comments = dask_compare.parse_microbenchmark(output)
    return results, comments, problem


def run_dask(options):
    """bench/dask_compare.py --dask-only, parsed."""
    command = [sys.executable, os.path.join(REPO_ROOT, "bench", "dask_compare.py"), "--dask-only"]
    command += microbenchmark_arguments(options)
    output, problem = run_command("dask", command, options.timeout)
    results, comments = dask_compare.parse_microbenchmark(output)
    return results, comments, problem


def stop_ray(env):
    """Stops every Ray process on this machine (only this script starts them)."""
    subprocess.run([RAY, "stop", "--force"], env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)


def print_table(columns, markdown):
    """One row per metric: the rates of each side, then Sunray over each other side."""
    sunray = columns.get("Sunray", {})
    others = [name for name in columns if name != "Sunray"]
    names = [name for name, _ in dask_compare.METRICS]
    for results in columns.values():
        names += [name for name in results if name not in names]
    header = list(columns) + [f"Sunray/{name}" for name in others if "Sunray" in columns]
    rows = []
    for name in names:
        if not any(name in results for results in columns.values()):
            continue
        row = [name] + [dask_compare.format_rate(results.get(name))
                        for results in columns.values()]
        if "Sunray" in columns:
            row += [dask_compare.format_ratio(sunray.get(name), columns[other].get(name))
                    for other in others]
        rows.append(row)
    header = ["metric"] + header
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|---|" + "---:|" * (len(header) - 1))
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        print(f"{row[0]:<{widths[0]}}  " + "  ".join(
            f"{row[i]:>{widths[i]}}" for i in range(1, len(row))))


def parse_args():
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description="Runs Ray's `ray microbenchmark`, bench/microbenchmark.cc on Ray's C++ "
        "API and on Sunray, and the Dask equivalents; prints them side by side."
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one run (2)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per workload (3)")
    parser.add_argument("--filter", default="", help="only metrics whose name contains this")
    parser.add_argument("--skip", default="",
                        help=f"comma-separated sides to leave out: {', '.join(SIDES)}")
    parser.add_argument("--microbenchmark", default=dask_compare.DEFAULT_MICROBENCHMARK,
                        help="Sunray's microbenchmark binary (build/bench/microbenchmark)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="stop a C++ or Dask run after this many seconds (default: from "
                        "--seconds and --repeats; 0: none)")
    parser.add_argument("--ray-python-timeout", type=float, default=3600,
                        help="stop `ray microbenchmark` after this many seconds (3600)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    options = parser.parse_args()
    options.skip = {side for side in options.skip.split(",") if side}
    if options.skip - set(SIDES):
        parser.error(f"--skip takes {', '.join(SIDES)}")
    if options.seconds <= 0 or options.repeats < 1:
        parser.error("--seconds must be positive and --repeats at least 1")
    if options.timeout is None:
        runs = dask_compare.WORKLOADS_IN_MICROBENCHMARK * (options.repeats + 1)
        options.timeout = 120 + 4 * runs * options.seconds
    options.microbenchmark = os.path.abspath(options.microbenchmark)
    return options


def main():
    """Runs the sides in turn, then prints the comparison."""
    options = parse_args()
    wants_ray = not {"ray-python", "ray-cpp"} <= options.skip
    if wants_ray and not os.access(RAY, os.X_OK):
        sys.exit(f"error: {RAY} not found: {INSTALL_HINT}")
    if "sunray" not in options.skip:
        dask_compare.check_microbenchmark(options.microbenchmark)  # before the long runs
    # SIGTERM and SIGHUP unwind like Ctrl-C, so that Ray is stopped below.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)
    temp_dir = tempfile.mkdtemp(prefix="ray-compare-")
    env = ray_environment(temp_dir)
    sides = [
        ("ray-python", "Ray Python", lambda: run_ray_python(options, env)),
        ("ray-cpp", "Ray C++", lambda: run_ray_cpp(options, env)),
        ("sunray", "Sunray", lambda: run_sunray(options)),
        ("dask", "Dask", lambda: run_dask(options)),
    ]
    columns, notes = {}, []
    try:
        for side, title, run in sides:
            if side in options.skip:
                continue
            try:
                results, comments, problem = run()
            except (subprocess.CalledProcessError, OSError, RuntimeError) as error:
                results, comments, problem = {}, [], f"failed: {error}"
            columns[title] = results
            notes += [comment if comment.startswith(f"# {side}")
                      else comment.replace("# ", f"# {side} ", 1) for comment in comments]
            if problem:
                notes.append(f"# {side}: {problem}; metrics it did not print show as —")
    finally:
        if wants_ray:
            stop_ray(env)
        shutil.rmtree(temp_dir, ignore_errors=True)
    # Sunray first: the ratios are Sunray's rate over each other side's.
    ordered = {title: columns[title] for title in ("Sunray", "Ray C++", "Ray Python", "Dask")
               if title in columns}
    print()
    for note in notes:
        print(note)
    print()
    print_table(ordered, options.markdown)
    different = [name for name in RAY_PYTHON_NOTES if name in columns.get("Ray Python", {})]
    if different:
        print("\nRay Python does other work than bench/microbenchmark.cc here:")
        for name in different:
            print(f"- {name}: {RAY_PYTHON_NOTES[name]}")
    return 1 if any("show as —" in note for note in notes) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted (Ray stopped, its session files removed)")
