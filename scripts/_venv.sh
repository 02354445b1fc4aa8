# Sourced by scripts/bqx and scripts/test: create (once) and update (when pyproject.toml changes)
# the project-local virtual environment, with the extras named in BQX_EXTRAS.
# Interpreter: $PYTHON if set; else the one the existing environment was made with; else python3 if
# it is 3.11-3.13, else the first of python3.11, python3.12, python3.13 found. An environment made
# with another interpreter than $PYTHON is made anew. BQX_VENV=DIR puts it elsewhere than .venv
# (CI keeps one per interpreter).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${BQX_VENV:-$root/.venv}"
supported() { "$1" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' 2>/dev/null; }
# A name or path that runs, else the newest pyenv version that has it (a pyenv shim of an inactive version fails).
resolve() {
  if "$1" -c '' 2>/dev/null; then echo "$1"; return; fi
  local pyenv_root; pyenv_root="$(pyenv root 2>/dev/null)" || { echo "$1"; return; }
  ls -d "$pyenv_root"/versions/*/bin/"$1" 2>/dev/null | sort -V | tail -1 | grep . || echo "$1"
}
version() { "$1" -c 'import platform; print(platform.python_implementation(), platform.python_version())'; }
if [ -n "${PYTHON:-}" ]; then
  python="$(resolve "$PYTHON")"
  supported "$python" || {
    echo "bqx needs CPython 3.11, 3.12 or 3.13; PYTHON=$PYTHON is $("$python" --version 2>&1)" >&2; exit 2; }
elif [ -x "$venv/bin/python" ] && supported "$venv/bin/python"; then
  python="$venv/bin/python"
else
  python=""
  for candidate in python3 python3.11 python3.12 python3.13; do
    candidate="$(resolve "$candidate")"
    if supported "$candidate"; then python="$candidate"; break; fi
  done
  [ -n "$python" ] || {
    echo "bqx needs CPython 3.11, 3.12 or 3.13 and found none; set PYTHON=/path/to/python3.13" >&2; exit 2; }
fi
if [ -x "$venv/bin/python" ] && [ "$(version "$venv/bin/python" 2>/dev/null)" != "$(version "$python")" ]; then
  echo "making $venv anew for $(version "$python") (it was made with $(version "$venv/bin/python" 2>&1))" >&2
  rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "creating the virtual environment $venv ($(version "$python"))" >&2
  "$python" -m venv "$venv"
fi
stamp="$venv/.bqx-installed-${BQX_EXTRAS//,/-}"
want="$(cat "$root/pyproject.toml" | sha256sum | cut -c1-16) ${BQX_EXTRAS}"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing bqx and its pinned dependencies into $venv (once)" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$root[$BQX_EXTRAS]"
  echo "$want" > "$stamp"
fi
