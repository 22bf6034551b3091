#!/usr/bin/env bash
# Install mmcv 2.1.0 *with its compiled ops* into the Python environment of $PYTHON.
#
# mmseg 1.2.2 imports mmcv.ops at import time, so mmcv-lite cannot serve, and PyPI has only
# mmcv's sdist. In order:
#   1. an existing wheel: $MMCV_WHEEL_DIR, this script's cache, or pip's configured find-links;
#   2. otherwise build one from the PyPI sdist with the C++20 fix (torch 2.14's headers need
#      C++20; mmcv's setup.py forces C++14/17), store it in the cache and install it.
# Either way the result is verified by running a compiled op; the script fails loudly otherwise.
#
#   PYTHON          interpreter of the target environment (default: python3); torch must be
#                   installed there already, since the ops are compiled against it
#   MMCV_WHEEL_DIR  folder holding a prebuilt mmcv-2.1.0 wheel (optional)
#   GUIDEZOO_WHEEL_CACHE  cache folder (default: ${XDG_CACHE_HOME:-$HOME/.cache}/guidezoo/wheels);
#                   wheels are kept per torch version, because the ops link against torch
#   MAX_JOBS        parallel compile jobs for a source build (default: number of cores)
set -euo pipefail

MMCV_VERSION=2.1.0
PYTHON=${PYTHON:-python3}
# The source build runs from inside the unpacked sdist: a relative interpreter path would break
# there. -s keeps a venv's python symlink unresolved (resolving it would leave the venv).
case $PYTHON in */*) PYTHON=$(realpath -s "$PYTHON") ;; esac
CACHE_ROOT=${GUIDEZOO_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/guidezoo/wheels}

say() { printf 'install_mmcv: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

torch_version=$("$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null) \
  || die "torch is not importable with PYTHON=$PYTHON; install the project (pip install -e .) first"
cache_dir="$CACHE_ROOT/torch-$torch_version"

# Runs one compiled op on CPU: a wheel built against another torch fails here, not in a user's run.
ops_work() {
  "$PYTHON" - "$MMCV_VERSION" <<'PY' >/dev/null 2>&1
import sys
import mmcv
import mmcv.ops
import torch
assert mmcv.__version__ == sys.argv[1], mmcv.__version__
boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0]])
dets, keep = mmcv.ops.nms(boxes, torch.tensor([0.9, 0.8]), iou_threshold=0.5)
assert keep.tolist() == [0]
PY
}

pip_install() { "$PYTHON" -m pip install --disable-pip-version-check "$@"; }

if ops_work; then
  say "mmcv $MMCV_VERSION with compiled ops is already installed"
  exit 0
fi
if "$PYTHON" -m pip show mmcv-lite >/dev/null 2>&1; then
  say "removing mmcv-lite (it has no compiled ops, and it shares the 'mmcv' module)"
  "$PYTHON" -m pip uninstall -y mmcv-lite
fi

# 1. an existing wheel. --only-binary keeps pip from building PyPI's sdist here; it searches the
#    find-links below plus whatever pip is configured with.
find_links=(--find-links "$cache_dir")
if [ -n "${MMCV_WHEEL_DIR:-}" ]; then
  [ -d "$MMCV_WHEEL_DIR" ] || die "MMCV_WHEEL_DIR=$MMCV_WHEEL_DIR is not a folder"
  find_links+=(--find-links "$MMCV_WHEEL_DIR")
fi
mkdir -p "$cache_dir"
if pip_install --only-binary=mmcv "${find_links[@]}" "mmcv==$MMCV_VERSION"; then
  if ops_work; then
    say "installed mmcv $MMCV_VERSION from an existing wheel; compiled ops verified"
    exit 0
  fi
  say "the wheel found does not run its ops with torch $torch_version; building from source instead"
  "$PYTHON" -m pip uninstall -y mmcv
else
  say "no mmcv $MMCV_VERSION wheel for this interpreter; building from source (about 20 minutes on 2 cores)"
fi

# 2. build from the sdist. mmcv's setup.py imports pkg_resources (gone in setuptools 82) and
#    compiles against the torch installed here, hence --no-build-isolation.
pip_install "setuptools>=77.0.3,<82" wheel ninja
build_dir=$(mktemp -d)
trap 'rm -rf "$build_dir"' EXIT
"$PYTHON" -m pip download --disable-pip-version-check --no-deps --no-binary=:all: \
  -d "$build_dir" "mmcv==$MMCV_VERSION"
tar -xzf "$build_dir"/mmcv-"$MMCV_VERSION".tar.gz -C "$build_dir"
src="$build_dir/mmcv-$MMCV_VERSION"
sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$src/setup.py"
grep -q -- '-std=c++20' "$src/setup.py" || die "the C++20 fix did not apply to $src/setup.py"
(cd "$src" && MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
  "$PYTHON" -m pip wheel --disable-pip-version-check --no-build-isolation --no-deps -w "$cache_dir" .)
pip_install --only-binary=mmcv --find-links "$cache_dir" "mmcv==$MMCV_VERSION"
ops_work || die "mmcv $MMCV_VERSION was built and installed, but its compiled ops do not run"
say "built mmcv $MMCV_VERSION into $cache_dir and installed it; compiled ops verified"
