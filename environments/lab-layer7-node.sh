#!/bin/sh
# The lab's Layer7 gateway nodes: each is a `runsheet twin layer7 --state-dir DIR` process
# (docs/twin-layer7.md "Health, node and lifecycle"), controlled here the way a real node is
# controlled with systemd, patchcli and ssgbackup/ssgrestore. The environment's hosts name
# these commands in their vars (environments/lab.yaml); playbooks/layer7-*.yaml run them.
#
#   lab-layer7-node.sh start   DIR LISTEN SEED BINARY  start the node unless it runs; wait until it serves
#   lab-layer7-node.sh stop    DIR                     SIGTERM by the PID file; wait until it saved and left
#   lab-layer7-node.sh status  DIR                     exit 0 while the node runs
#   lab-layer7-node.sh patch   DIR FILE                "install" patch FILE: its name without .L7P
#                                                      becomes a line of DIR/patches (read at the next boot)
#   lab-layer7-node.sh backup  DIR IMAGE               keep DIR's version and patches as backup IMAGE
#   lab-layer7-node.sh restore DIR IMAGE               put backup IMAGE's version and patches back
#
# Relative paths are taken from the working directory (runsheet's, with the host var `cwd: .`).
set -eu
# alive, running_pid, wait_started, stop_node
. "$(dirname "$0")/lab-node-lib.sh"

usage() {
    echo "usage: $0 start DIR LISTEN SEED BINARY | stop DIR | status DIR | patch DIR FILE | backup DIR IMAGE | restore DIR IMAGE" >&2
    exit 2
}

start() {
    dir=$1 listen=$2 seed=$3 binary=$4
    if pid=$(running_pid "$dir/layer7.pid"); then
        echo "node $dir already runs (pid $pid) on $listen"
        return 0
    fi
    if [ ! -x "$binary" ]; then
        echo "no runsheet binary at $binary (working directory $(pwd)): build it with 'cargo build --release', or name yours in the start command of environments/lab.yaml" >&2
        return 1
    fi
    mkdir -p "$dir"
    rm -f "$dir/layer7.pid"
    setsid "$binary" twin layer7 --listen "$listen" --state-dir "$dir" --seed "$seed" --control \
        >>"$dir/node.log" 2>&1 </dev/null &
    child=$!
    wait_started "$dir" "$dir/layer7.pid" "$child" "$listen"
    echo "node $dir started (pid $(cat "$dir/layer7.pid")) on http://$listen"
}

stop() {
    stop_node "$1" "$1/layer7.pid"
}

patch() {
    dir=$1 file=$2
    id=$(basename "$file" .L7P)
    case $id in
        '' | *[!A-Za-z0-9._-]*)
            echo "patch file $file: its name must be <patch id>.L7P" >&2
            return 1
            ;;
    esac
    if [ -f "$dir/patches" ] && cut -d ' ' -f 1 "$dir/patches" | grep -qx "$id"; then
        echo "patch $id is already installed on node $dir" >&2
        return 1
    fi
    echo "$id lab patch $file" >>"$dir/patches"
    echo "patch $id installed on node $dir; it shows after a restart"
}

backup() {
    dir=$1 image="$1/backups/$(basename "$2")"
    mkdir -p "$image"
    cp "$dir/version" "$image/version"
    if [ -f "$dir/patches" ]; then cp "$dir/patches" "$image/patches"; else rm -f "$image/patches"; fi
    echo "node $dir backed up to $image"
}

restore() {
    dir=$1 image="$1/backups/$(basename "$2")"
    if [ ! -f "$image/version" ]; then
        echo "no backup $image of node $dir" >&2
        return 1
    fi
    cp "$image/version" "$dir/version"
    if [ -f "$image/patches" ]; then cp "$image/patches" "$dir/patches"; else rm -f "$dir/patches"; fi
    echo "node $dir restored from $image; it shows after a restart"
}

[ $# -ge 2 ] || usage
verb=$1
shift
case $verb in
    start) [ $# -eq 4 ] || usage; start "$@" ;;
    stop) [ $# -eq 1 ] || usage; stop "$@" ;;
    status) [ $# -eq 1 ] || usage; running_pid "$1/layer7.pid" >/dev/null ;;
    patch) [ $# -eq 2 ] || usage; patch "$@" ;;
    backup) [ $# -eq 2 ] || usage; backup "$@" ;;
    restore) [ $# -eq 2 ] || usage; restore "$@" ;;
    *) usage ;;
esac
