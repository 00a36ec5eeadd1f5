# Shared by scripts/demo and scripts/test: a project virtual environment and the
# Debian packages a command needs, installed when missing (one apt-get update).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ATLAS_VENV:-$ROOT/.venv}"
_apt_updated=""

say() { printf '==> %s\n' "$*" >&2; }

# apt_need PACKAGE COMMAND: install PACKAGE unless COMMAND is on PATH.
apt_need() {
    local pkg="$1" cmd="$2"
    command -v "$cmd" >/dev/null 2>&1 && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if [ -z "$_apt_updated" ]; then
        say "apt-get update"
        $sudo apt-get update -qq
        _apt_updated=1
    fi
    say "installing Debian package $pkg (for $cmd)"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
}

# venv_ready EXTRAS: create .venv and install the project (editable) with EXTRAS.
venv_ready() {
    local extras="${1:-}"
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating virtual environment $VENV"
        if ! python3 -m venv "$VENV" 2>/dev/null; then
            rm -rf "$VENV"
            apt_need python3-venv __no_such_command__
            python3 -m venv "$VENV"
        fi
    fi
    local stamp="$VENV/.installed${extras:+-$extras}"
    if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
        say "installing Atlas${extras:+ [$extras]} into $VENV"
        "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
        "$VENV/bin/python" -m pip install -q -e "$ROOT${extras:+[$extras]}"
        touch "$stamp"
    fi
}
