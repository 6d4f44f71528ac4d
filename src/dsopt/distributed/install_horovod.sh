#!/usr/bin/env bash
# Build and install Horovod 0.28.1 for the installed torch (CPU ops over gloo; no MPI), caching the wheel.
#
# Why a script: Horovod's last release (0.28.1, June 2023) does not build against current torch as
# published. Its sources ask for C++14 where torch's headers need C++17, and CMake 4 rejects its bundled
# gloo ("Compatibility with CMake < 3.5 has been removed"). The recipe below (measured: ~5 min on 2 cores)
# takes the sdist from PyPI, switches both CMakeLists to C++17, sets CMAKE_POLICY_VERSION_MINIMUM=3.5 and
# builds with the SYSTEM cmake (Debian's 3.25; the pip `cmake` package is never used).
#
# The built wheel is kept under pip's cache folder (`pip cache dir`)/dsopt-horovod/KEY/, KEY naming the
# Horovod version, torch version, Python tag, machine and this recipe's revision: a second run (CI, a
# Binder rebuild, a fresh venv) installs it in seconds. The wheel links against torch's C++ ABI, so a
# different torch version builds again.
#
# Usage:  bash install_horovod.sh            (uses `python` on PATH: activate your venv first)
#         PYTHON=/path/to/python JOBS=2 bash install_horovod.sh
# Needs:  a C++ compiler, make, cmake >= 3.13 and < 4 (Debian: apt-get install -y g++ make cmake),
#         torch already installed in that Python. Check afterwards with `dsopt doctor`.
set -euo pipefail

PY=${PYTHON:-python}
VERSION=0.28.1
SDIST_SHA256=92a43f5a94c43907a56805bad15f19700c62ffc83b7ca483f9e104e229f67ef0
RECIPE=1  # bump when the patch or the flags below change (invalidates cached wheels)
JOBS=${JOBS:-2}
say() { echo "install_horovod: $*" >&2; }

if "$PY" -c "import horovod, horovod.torch; assert horovod.__version__ == '$VERSION'" 2>/dev/null; then
  say "horovod $VERSION with torch support is already installed in $("$PY" -c 'import sys; print(sys.prefix)')"
  exit 0
fi

TORCH=$("$PY" -c "import torch; print(torch.__version__)" 2>/dev/null) || {
  say "torch is not importable with $PY; install torch first (e.g. pip install torch==2.13.0)"; exit 1; }
PYTAG=$("$PY" -c "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')")
KEY="horovod-$VERSION-torch$TORCH-$PYTAG-$(uname -m)-r$RECIPE"
CACHE="$("$PY" -m pip cache dir 2>/dev/null || echo "$HOME/.cache/pip")/dsopt-horovod/$KEY"

# Horovod's runtime dependencies (its setup.py's require_list), installed the ordinary way.
"$PY" -m pip install -q cloudpickle psutil pyyaml packaging

shopt -s nullglob
cached=("$CACHE"/horovod-*.whl)
if (( ${#cached[@]} )); then
  say "installing the cached wheel ${cached[0]}"
  "$PY" -m pip install -q --no-deps --force-reinstall "${cached[0]}"
else
  CMAKE_BIN=${CMAKE:-$(command -v cmake || true)}
  case "$CMAKE_BIN" in
    */site-packages/*|*/.venv/*|*/venv/*|"")
      [ -x /usr/bin/cmake ] && CMAKE_BIN=/usr/bin/cmake || {
        say "no system cmake found (the pip 'cmake' package does not work here); apt-get install -y cmake"; exit 1; } ;;
  esac
  CMAKE_VERSION=$("$CMAKE_BIN" --version | sed -n 's/^cmake version \([0-9.]*\).*/\1/p')
  case "$CMAKE_VERSION" in
    3.1[3-9]*|3.2*|3.3*) ;;
    *) say "cmake $CMAKE_VERSION at $CMAKE_BIN: need 3.13 <= version < 4 (Debian's cmake 3.25 works)"; exit 1 ;;
  esac
  command -v c++ >/dev/null && command -v make >/dev/null || { say "need a C++ compiler and make: apt-get install -y g++ make"; exit 1; }

  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
  start=$(date +%s)
  say "building horovod $VERSION for torch $TORCH ($PYTAG) with $CMAKE_BIN ($CMAKE_VERSION), $JOBS jobs; takes ~5 min on 2 cores"
  "$PY" -m pip download -q --no-deps --no-binary :all: "horovod==$VERSION" -d "$WORK"
  echo "$SDIST_SHA256  $WORK/horovod-$VERSION.tar.gz" | sha256sum -c --quiet - || { say "sdist checksum mismatch"; exit 1; }
  tar -xzf "$WORK/horovod-$VERSION.tar.gz" -C "$WORK"
  SRC="$WORK/horovod-$VERSION"
  # C++14 -> C++17 (torch's headers need 17), in the two places the sources set it.
  sed -i 's/^set(CMAKE_CXX_STANDARD 14)/set(CMAKE_CXX_STANDARD 17)/' "$SRC/CMakeLists.txt"
  sed -i 's/^\(\s*\)set(CMAKE_CXX_STANDARD 14)/\1set(CMAKE_CXX_STANDARD 17)/' "$SRC/horovod/torch/CMakeLists.txt"
  if grep -q "CMAKE_CXX_STANDARD 14" "$SRC/CMakeLists.txt" "$SRC/horovod/torch/CMakeLists.txt"; then
    say "the C++17 patch did not apply (sources changed?)"; exit 1
  fi
  # Make sure Horovod's setup.py finds the system cmake first.
  mkdir -p "$WORK/bin" && ln -s "$CMAKE_BIN" "$WORK/bin/cmake"
  ( cd "$SRC" && PATH="$WORK/bin:$PATH" MAKEFLAGS="-j$JOBS" CMAKE_POLICY_VERSION_MINIMUM=3.5 \
      HOROVOD_WITH_PYTORCH=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 HOROVOD_WITHOUT_TENSORFLOW=1 \
      HOROVOD_WITHOUT_MXNET=1 HOROVOD_CPU_OPERATIONS=GLOO \
      "$PY" -m pip wheel -q --no-build-isolation --no-deps -w "$WORK/wheel" . )
  built=("$WORK"/wheel/horovod-*.whl)
  mkdir -p "$CACHE"
  cp "${built[0]}" "$CACHE/.partial" && mv "$CACHE/.partial" "$CACHE/$(basename "${built[0]}")"  # atomic
  say "built in $(( $(date +%s) - start )) s; cached as $CACHE/$(basename "${built[0]}")"
  "$PY" -m pip install -q --no-deps --force-reinstall "$CACHE/$(basename "${built[0]}")"
fi

"$PY" -c "import horovod.torch as hvd; hvd.init(); assert hvd.size() == 1; print('install_horovod: horovod', __import__('horovod').__version__, 'works (gloo built:', hvd.gloo_built(), ')')"
