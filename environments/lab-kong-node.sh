#!/bin/sh
# The lab's Kong data-plane nodes: each is a `runsheet twin node --state-dir DIR` process
# (docs/twin-kong.md "Gateway node stand-in"), controlled here the way a real node is
# controlled with systemd and a package manager. The environment's hosts name these
# commands in their vars (environments/lab.yaml, hosts dp1-dp3); the Kong playbooks run them.
# runsheet itself starts a node that is not running before a command uses the lab (the
# host's `twin: {node: ...}`), with the same state directory.
#
#   lab-kong-node.sh start      DIR LISTEN VERSION  start the node unless it runs; wait until it serves
#                                                   (VERSION only on its first start: DIR/version
#                                                   keeps the installed one)
#   lab-kong-node.sh stop       DIR                 SIGTERM by the PID file; wait until it left
#   lab-kong-node.sh status     DIR                 exit 0 while the node runs
#   lab-kong-node.sh install    DIR VERSION         "install" Kong VERSION: rewrite DIR/version (the
#                                                   node shows it after a restart)
#   lab-kong-node.sh migrations DIR up|finish       what `kong migrations up|finish` would do on the
#                                                   control plane: here a line in DIR/migrations.log
#
# The runsheet binary that starts a node: $RUNSHEET_BIN when set, else the one that last
# started it (DIR/binary, written by runsheet and by this script), else
# target/release/runsheet. Relative paths are taken from the working directory (runsheet's,
# with the host var `cwd: .`).
set -eu
# alive, running_pid, wait_started, stop_node
. "$(dirname "$0")/lab-node-lib.sh"

usage() {
    echo "usage: $0 start DIR LISTEN VERSION | stop DIR | status DIR | install DIR VERSION | migrations DIR up|finish" >&2
    exit 2
}

# A Kong version: 3.9.1, or four parts for Enterprise (3.4.3.12).
check_version() {
    case $1 in
        '' | *[!0-9.]* | .* | *. | *..*)
            echo "version '$1' is not a Kong version (e.g. 3.9.1 or 3.4.3.12)" >&2
            return 1
            ;;
    esac
}

start() {
    dir=$1 listen=$2 version=$3
    check_version "$version"
    if pid=$(running_pid "$dir/node.pid"); then
        echo "node $dir already runs (pid $pid) on http://$listen"
        return 0
    fi
    binary=${RUNSHEET_BIN:-}
    if [ -z "$binary" ] && [ -s "$dir/binary" ]; then binary=$(cat "$dir/binary"); fi
    if [ -z "$binary" ]; then binary=target/release/runsheet; fi
    if [ ! -x "$binary" ]; then
        echo "no runsheet binary at $binary (working directory $(pwd)): build it with 'cargo build --release', or set RUNSHEET_BIN" >&2
        return 1
    fi
    mkdir -p "$dir"
    echo "$binary" >"$dir/binary"
    rm -f "$dir/node.pid"
    setsid "$binary" twin node --listen "$listen" --version "$version" --state-dir "$dir" \
        >>"$dir/node.log" 2>&1 </dev/null &
    child=$!
    wait_started "$dir" "$dir/node.pid" "$child" "$listen"
    echo "node $dir started (pid $(cat "$dir/node.pid"), Kong $(cat "$dir/version")) on http://$listen"
}

stop() {
    stop_node "$1" "$1/node.pid"
}

install() {
    dir=$1 version=$2
    check_version "$version"
    if [ ! -d "$dir" ]; then
        echo "no node at $dir: start it once first" >&2
        return 1
    fi
    before=$(cat "$dir/version" 2>/dev/null || echo none)
    echo "$version" >"$dir/version.new"
    mv "$dir/version.new" "$dir/version"
    echo "kong $version installed on node $dir (was $before); it shows after a restart"
}

migrations() {
    dir=$1 phase=$2
    case $phase in
        up | finish) ;;
        *) usage ;;
    esac
    mkdir -p "$dir"
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) kong migrations $phase (lab: no database, nothing to migrate)" >>"$dir/migrations.log"
    echo "kong migrations $phase: lab control plane, no database, nothing to migrate (recorded in $dir/migrations.log)"
}

[ $# -ge 2 ] || usage
verb=$1
shift
case $verb in
    start) [ $# -eq 3 ] || usage; start "$@" ;;
    stop) [ $# -eq 1 ] || usage; stop "$@" ;;
    status) [ $# -eq 1 ] || usage; running_pid "$1/node.pid" >/dev/null ;;
    install) [ $# -eq 2 ] || usage; install "$@" ;;
    migrations) [ $# -eq 2 ] || usage; migrations "$@" ;;
    *) usage ;;
esac
