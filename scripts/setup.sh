#!/bin/sh
# Idempotent setup: the Debian packages the tests and the lab need, and the
# project's virtualenv at .venv with every Python dependency at the version
# pinned in python/requirements.lock (hashes checked) and congress-ha itself
# in editable mode. A second run installs nothing and takes about a second.
# `make upgrade-deps` moves the pins forward (docs/dependencies.md).
set -eu
cd "$(dirname "$0")/.."
t0=$(date +%s)
say() { echo "setup [+$(( $(date +%s) - t0 ))s]: $*"; }

APT_PACKAGES="rabbitmq-server postgresql mariadb-server shellcheck libxml2-utils \
pacemaker corosync pacemaker-cli-utils crmsh pcs resource-agents fence-agents \
openssh-server openssh-client iproute2 procps openssl haproxy curl python3-venv"

missing=""
for p in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done
if [ -n "$missing" ]; then
    say "installing Debian packages:$missing"
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: these packages are missing and installing them needs root:$missing" >&2
        exit 1
    fi
    # Nothing may start by itself: block service start-up during the install.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
    rm -f /usr/sbin/policy-rc.d
    trap - EXIT
    say "Debian packages installed"
fi

# Debian's own Python by default, not one under a user's home (pyenv): the
# lab's nodes run this venv as the service's user (congress-ha), which must be
# able to run its interpreter (docs/lab.md).
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3
else PY=python3
fi
home=$(dirname "$(readlink -f "$(command -v "$PY")")")
if [ -f .venv/pyvenv.cfg ] && ! grep -qx "home = $home" .venv/pyvenv.cfg; then
    say "recreating .venv with $PY (it was made with another Python)"
    rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $PY"
    "$PY" -m venv .venv
fi
lock=python/requirements.lock
stamp=.venv/.stamp-install
if [ ! -f "$stamp" ] || [ -n "$(find "$lock" python/pyproject.toml -newer "$stamp")" ]; then
    say "installing $lock into .venv"
    # The lock pins pip and setuptools too: install exactly it, nothing resolved
    # here, then the project itself without dependencies (they are all in it).
    log=.venv/setup-pip.log
    if ! { .venv/bin/python -m pip install -q --disable-pip-version-check \
               --require-hashes --no-deps -r "$lock" \
           && .venv/bin/python -m pip install -q --disable-pip-version-check \
               --no-deps --no-build-isolation -e python; } > "$log" 2>&1; then
        grep -v 'is ignored: it is neither a file nor a directory' "$log" >&2
        echo "setup: pip failed (full output in $log)" >&2
        exit 1
    fi
    .venv/bin/python -m pip check >/dev/null || {
        .venv/bin/python -m pip check >&2
        echo "setup: $lock is inconsistent: run \`make upgrade-deps\`" >&2
        exit 1
    }
    touch "$stamp"
fi
say "ready"
