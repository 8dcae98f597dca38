#!/bin/sh
#
# Install the congress-ha OCF agents (called by `make install`):
#
#   sh resource-agents/install.sh                 # to /usr/lib/ocf/resource.d/congress
#   DESTDIR=/tmp/pkg sh resource-agents/install.sh
#
# The agents go to $DESTDIR$OCF_RA_DIR/congress/ mode 755 (they become
# ocf:congress:api-pe and ocf:congress:datasources); their shared library and
# its timings go next to them mode 644, so Pacemaker does not list them as
# agents.
set -eu

src=$(cd "$(dirname "$0")" && pwd)
dest="${DESTDIR:-}${OCF_RA_DIR:-/usr/lib/ocf/resource.d}/congress"

install -d -m 755 "$dest"
install -m 755 "$src/api-pe" "$src/datasources" "$dest/"
install -m 644 "$src/congress-ha-common.sh" "$src/congress-ha-timings.sh" "$dest/"
echo "installed ocf:congress:api-pe and ocf:congress:datasources in $dest"
