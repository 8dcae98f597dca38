#!/bin/sh
# Idempotent setup: the Debian packages the tests and the lab need, and the
# project's virtualenv at .venv with congress-ha installed in editable mode.
# A second run installs nothing and takes about a second.
set -eu
cd "$(dirname "$0")/.."

APT_PACKAGES="rabbitmq-server postgresql shellcheck libxml2-utils \
pacemaker corosync pacemaker-cli-utils crmsh pcs resource-agents fence-agents \
openssh-server openssh-client iproute2 procps"

missing=""
for p in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing Debian packages:$missing"
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: these packages are missing and installing them needs root:$missing" >&2
        exit 1
    fi
    # Nothing may start by itself: block service start-up during the install.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$PY" -m venv .venv
fi
stamp=.venv/.stamp-install
if [ ! -f "$stamp" ] || [ python/pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing python/ into .venv"
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e "python[test]"
    touch "$stamp"
fi
echo "setup: ready"
