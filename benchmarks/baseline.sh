#!/bin/sh
# An older coreseg installed in a folder of its own, for the benchmarks that
# run its commands beside today's (benchmarks/test_bench_cores.py):
#
#   folder=$(sh benchmarks/baseline.sh 083b6ed)      # builds it once (a few minutes: the native core)
#   CORESEG_BASELINE=$folder CORESEG_BASELINE_REV=083b6ed \
#       python -m pytest benchmarks/test_bench_cores.py --benchmark-json=/tmp/cores.json
#   python benchmarks/report.py /tmp/cores.json --print   # its tables; without --print it rewrites BENCHMARKS.md
#   (report.py alone, with both variables set, runs every benchmark with the older rows and writes BENCHMARKS.md)
#
# The revision is checked out as a git worktree in /tmp/coreseg-REV and
# installed with `pip install --no-deps --no-build-isolation --target
# /tmp/coreseg-REV-site`: its dependencies are today's (numpy, onnxruntime,
# OpenCV, ...), so only coreseg itself differs. The benchmarks run it with
# PYTHONPATH=FOLDER. The folder is printed on stdout, everything else goes
# to stderr; a folder already built is reused. Afterwards:
# git worktree remove /tmp/coreseg-REV; rm -rf /tmp/coreseg-REV-site.
set -eu

rev=${1:?usage: baseline.sh REVISION (e.g. 083b6ed)}
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
tree=/tmp/coreseg-$rev
site=/tmp/coreseg-$rev-site

if [ -f "$site/coreseg/__init__.py" ] && ls "$site"/coreseg/_native*.so >/dev/null 2>&1; then
    echo "$site"
    exit 0
fi
if [ ! -d "$tree" ]; then
    git -C "$repo" worktree add --detach "$tree" "$rev" >&2
fi
# Its own build folder, so that the worktree's build does not touch today's.
"$python" -m pip install --no-deps --no-build-isolation --target "$site" \
    --config-settings=build-dir="$tree/build" "$tree" >&2
echo "$site"
