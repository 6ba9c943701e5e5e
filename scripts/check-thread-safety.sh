#!/usr/bin/env bash
# Runs clang's thread-safety analysis (-Wthread-safety, as errors) over every
# source file under src/, with the flags the build uses (its
# compile_commands.json). Syntax only: nothing is compiled to objects. The
# annotations it checks are Abseil's (ABSL_GUARDED_BY, ABSL_EXCLUSIVE_LOCKS_
# REQUIRED, ...), which only clang understands.
#   scripts/check-thread-safety.sh [BUILD_DIR]     (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-build}"
clang="$(command -v clang++ || true)"
if [ -z "$clang" ]; then
  echo "check-thread-safety: clang++ is not installed (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
if [ ! -f "$build_dir/compile_commands.json" ]; then
  echo "check-thread-safety: no $build_dir/compile_commands.json; configure the build first" >&2
  exit 1
fi
python3 - "$build_dir/compile_commands.json" "$clang" "$(nproc)" <<'PY'
import json, os, shlex, subprocess, sys
from concurrent.futures import ThreadPoolExecutor

commands, clang, jobs = sys.argv[1], sys.argv[2], int(sys.argv[3])
root = os.getcwd()
entries = [e for e in json.load(open(commands))
           if os.path.relpath(e["file"], root).startswith("src" + os.sep)
           and e["file"].endswith(".cc")]

def check(entry):
    args = shlex.split(entry["command"])
    # Drop the launcher (ccache) and the compiler; keep the flags.
    while args and not args[0].startswith("-"):
        args.pop(0)
    flags, skip = [], False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in ("-o", "-MF", "-MT", "-MQ", "-c"):
            skip = arg != "-c"
            continue
        if arg in ("-MD", "-MMD") or arg == entry["file"]:
            continue
        flags.append(arg)
    run = subprocess.run([clang, *flags, "-fsyntax-only", "-Wno-unknown-warning-option",
                          "-Wthread-safety", "-Werror=thread-safety", entry["file"]],
                         cwd=entry["directory"], capture_output=True, text=True)
    return entry["file"], run.returncode, run.stderr

failed = 0
with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
    for path, code, errors in pool.map(check, entries):
        if code != 0:
            failed += 1
            sys.stderr.write(errors)
print(f"thread-safety analysis: {len(entries) - failed} of {len(entries)} files clean")
sys.exit(1 if failed else 0)
PY
