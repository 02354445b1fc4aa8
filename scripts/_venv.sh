# Sourced by scripts/bqx and scripts/test: create (once) and update (when pyproject.toml changes)
# the project-local virtual environment .venv, with the extras named in BQX_EXTRAS.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      python="$candidate"; break
    fi
  done
fi
"$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
  echo "bqx needs Python 3.11 (found $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2; exit 2; }
stamp="$venv/.bqx-installed-${BQX_EXTRAS//,/-}"
want="$(cat "$root/pyproject.toml" | sha256sum | cut -c1-16) ${BQX_EXTRAS}"
if [ ! -x "$venv/bin/python" ]; then
  echo "creating the virtual environment $venv" >&2
  "$python" -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing bqx and its pinned dependencies into $venv (once)" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$root[$BQX_EXTRAS]"
  echo "$want" > "$stamp"
fi
