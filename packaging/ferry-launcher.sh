#!/bin/sh
# ferry launcher (installed as <prefix>/bin/ferry): runs the ferry CLI with a
# Node.js >= 20.19. Which node: $FERRY_NODE, else <prefix>/node/bin/node (a
# Node bundled with the tarball, see `build.sh --with-node`), else `node` on PATH.
set -e
self=$(readlink -f "$0")
base=$(dirname "$(dirname "$self")")
if [ -n "${FERRY_NODE:-}" ]; then
  node=$FERRY_NODE
elif [ -x "$base/node/bin/node" ]; then
  node=$base/node/bin/node
elif command -v node >/dev/null 2>&1; then
  node=$(command -v node)
elif command -v nodejs >/dev/null 2>&1; then
  node=$(command -v nodejs)
else
  echo "ferry: Node.js >= 20.19 is required and no 'node' was found on PATH (set FERRY_NODE=/path/to/node)" >&2
  exit 1
fi
v=$("$node" --version 2>/dev/null) || { echo "ferry: $node does not run" >&2; exit 1; }
v=${v#v}
major=${v%%.*}
rest=${v#*.}
minor=${rest%%.*}
case "$major$minor" in
  *[!0-9]*|'') echo "ferry: cannot read the version of $node ($v)" >&2; exit 1 ;;
esac
if [ "$major" -lt 20 ] || { [ "$major" -eq 20 ] && [ "$minor" -lt 19 ]; }; then
  echo "ferry: Node.js >= 20.19 is required; $node is v$v (set FERRY_NODE=/path/to/node)" >&2
  exit 1
fi
# `ferry service install` writes units that run this launcher (the path it
# was started as, e.g. /usr/bin/ferry, when absolute) rather than node + bin.js.
case "$0" in
  /*) FERRY_LAUNCHER=$0 ;;
  *) FERRY_LAUNCHER=$self ;;
esac
export FERRY_LAUNCHER
exec "$node" "$base/dist/cli/bin.js" "$@"
