#!/bin/sh
# deps.sh PKG... - makes sure the Debian packages are installed.
# As root, installs the missing ones with apt-get; otherwise names them
# and fails.
missing=""
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages:$missing (run as root to install them)" >&2
  exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null &&
  apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
  { echo "apt-get install failed:$missing" >&2; exit 1; }
