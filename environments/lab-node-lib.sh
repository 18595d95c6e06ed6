# Shell functions shared by the lab's node scripts (lab-kong-node.sh, lab-layer7-node.sh),
# sourced by them: a node is a `runsheet twin ...` process that writes its PID file in its
# state directory once it serves and removes it on exit.

# Whether process $1 runs. One that exited but is not reaped yet (a zombie, until its
# parent or init collects it) has stopped: it holds no port and no file.
alive() {
    kill -0 "$1" 2>/dev/null || return 1
    if [ -r "/proc/$1/stat" ]; then
        [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -d ' ' -f 1)" != Z ] || return 1
    fi
}

# The PID in file $1 while that process runs.
running_pid() {
    [ -s "$1" ] || return 1
    pid=$(cat "$1")
    alive "$pid" || return 1
    echo "$pid"
}

# Waits until node DIR ($1), started as process $3 to listen on $4, has written its PID
# file $2; fails, with the end of DIR/node.log, when the process ended first or after 30 s.
wait_started() {
    dir=$1 pid_file=$2 child=$3 listen=$4
    waited=0
    while [ ! -s "$pid_file" ]; do
        if ! alive "$child"; then
            echo "node $dir did not start on $listen; the end of $dir/node.log:" >&2
            tail -n 5 "$dir/node.log" >&2
            return 1
        fi
        waited=$((waited + 1))
        if [ "$waited" -gt 600 ]; then
            echo "node $dir did not serve on $listen within 30 s; see $dir/node.log" >&2
            return 1
        fi
        sleep 0.05
    done
}

# Stops node DIR ($1) by its PID file $2 (SIGTERM) and waits up to 30 s until it left.
stop_node() {
    dir=$1 pid_file=$2
    if ! pid=$(running_pid "$pid_file"); then
        rm -f "$pid_file"
        echo "node $dir is not running"
        return 0
    fi
    kill -TERM "$pid"
    waited=0
    while alive "$pid"; do
        waited=$((waited + 1))
        if [ "$waited" -gt 600 ]; then
            echo "node $dir (pid $pid) did not stop within 30 s of SIGTERM" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "node $dir stopped (pid $pid)"
}
