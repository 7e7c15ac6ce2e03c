#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the tests (tests/test_slurm.py) and for trying
# `hydra/launcher=slurm` without a cluster:
#   bash scripts/slurm_local.sh start    # configure and start munged, slurmctld, slurmd; wait for the node
#   bash scripts/slurm_local.sh status   # what runs, and who started it
#   bash scripts/slurm_local.sh stop     # stop the daemons this script started, and nothing else
# It installs nothing: it needs Debian's packages (apt-get install -y slurm-wlm munge) and root
# (slurmd runs as root; no systemd needed). The node is this machine with its real CPU count and
# memory (`slurmd -C`), one partition `debug`, no accounting (sacct has nothing to read).
# Idempotent: `start` on a running cluster changes nothing; a daemon already running that this
# script did not start (e.g. the system's munged) is used and never stopped.
set -euo pipefail

STATE=${SLURM_LOCAL_STATE:-/var/tmp/harness-slurm}   # spool, state, logs, pid files, what we started
CONF=/etc/slurm/slurm.conf                           # where sbatch, squeue and the daemons look
MARK="# written by scripts/slurm_local.sh"
STARTED=$STATE/started                               # one daemon name per line

die() { echo "error: $*" >&2; exit 1; }
say() { echo "slurm_local: $*"; }

# pid of a running daemon from its pid file (empty if none, or if the pid is now something else)
running_pid() {
    local name=$1 file=$2 pid
    [ -r "$file" ] || return 0
    pid=$(tr -dc 0-9 <"$file")
    [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$name" ] && echo "$pid"
    return 0
}
munged_pid() { running_pid munged "$STATE/munged.pid"; }
ctld_pid() { running_pid slurmctld "$STATE/slurmctld.pid"; }
slurmd_pid() { running_pid slurmd "$STATE/slurmd.pid"; }
started_here() { [ -r "$STARTED" ] && grep -qx "$1" "$STARTED"; }
munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

need_tools() {
    local missing=()
    for tool in munged munge slurmctld slurmd sinfo sbatch; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    [ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}: install them with apt-get install -y slurm-wlm munge"
    [ "$(id -u)" -eq 0 ] || die "needs root (slurmd runs as root): run it with sudo"
}

write_conf() {
    if [ -e "$CONF" ] && ! grep -qx "$MARK" "$CONF"; then
        die "$CONF exists and was not written by this script: this machine has its own Slurm; use it"
    fi
    local node host
    host=$(hostname -s)
    # the node as slurmd sees it: real CPUs, sockets, cores, threads and memory
    node=$(slurmd -C | head -n 1 | sed "s/^NodeName=[^ ]*/NodeName=$host/")
    mkdir -p "$STATE/ctld" "$STATE/d" /etc/slurm
    cat >"$CONF.tmp" <<EOF
$MARK
# A one-node cluster for tests and trials; remove it with: bash scripts/slurm_local.sh stop
ClusterName=harness-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
# no cgroups, no systemd: processes tracked by parentage, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# a job gets 10 s after SIGTERM (scancel, time limit) before SIGKILL
KillWait=10
InactiveLimit=0
MinJobAge=300
MaxArraySize=10001
MaxJobCount=20000
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$CONF.tmp" "$CONF"
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: until COMMAND succeeds
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq $((seconds * 5))); do
        "$@" && return 0
        sleep 0.2
    done
    die "$what did not come up in ${seconds} s (logs: $STATE/*.log)"
}

node_ready() { sinfo -h -o %t 2>/dev/null | grep -Eq '^(idle|mix|alloc)'; }

start() {
    need_tools
    mkdir -p "$STATE"
    touch "$STARTED"
    if munge_works; then
        say "munged: running"
    else
        install -d -o munge -g munge -m 0755 /run/munge
        install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
        [ -s /etc/munge/munge.key ] || { mungekey --create --keyfile=/etc/munge/munge.key &&
                                          chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key; }
        : >"$STATE/munged.pid"
        chown munge:munge "$STATE/munged.pid"
        runuser -u munge -- munged --pid-file="$STATE/munged.pid"
        wait_for 10 munged munge_works
        echo munged >>"$STARTED"
        say "munged: started (pid $(munged_pid))"
    fi
    if [ -n "$(ctld_pid)" ] && [ -n "$(slurmd_pid)" ]; then
        say "slurmctld and slurmd: running"
    else
        write_conf
        if [ -z "$(ctld_pid)" ]; then
            slurmctld
            wait_for 20 slurmctld eval "scontrol ping >/dev/null 2>&1"
            started_here slurmctld || echo slurmctld >>"$STARTED"
            say "slurmctld: started (pid $(ctld_pid))"
        fi
        if [ -z "$(slurmd_pid)" ]; then
            slurmd
            wait_for 20 slurmd eval '[ -n "$(slurmd_pid)" ]'
            started_here slurmd || echo slurmd >>"$STARTED"
            say "slurmd: started (pid $(slurmd_pid))"
        fi
    fi
    wait_for 30 "the node" node_ready
    say "ready: $(sinfo -h -o '%P %D node(s) %c CPUs %m MB %t')"
}

stop_one() {  # stop_one NAME PID
    local name=$1 pid=$2
    if ! started_here "$name"; then
        [ -n "$pid" ] && say "$name: not started by this script, left running"
        return 0
    fi
    if [ -n "$pid" ]; then
        kill "$pid"
        for _ in $(seq 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
        [ -d "/proc/$pid" ] && die "$name (pid $pid) did not stop"
        say "$name: stopped (pid $pid)"
    fi
    sed -i "/^$name\$/d" "$STARTED"
}

stop() {
    [ -s "$STARTED" ] || { say "nothing started by this script is running"; return 0; }
    stop_one slurmd "$(slurmd_pid)"
    stop_one slurmctld "$(ctld_pid)"
    stop_one munged "$(munged_pid)"
    if [ ! -s "$STARTED" ] && [ -e "$CONF" ] && grep -qx "$MARK" "$CONF"; then
        rm -f "$CONF"
        say "removed $CONF"
    fi
}

status() {
    local rc=0 name pid
    for name in munged slurmctld slurmd; do
        pid=$("${name/slurmctld/ctld}_pid")
        if [ -n "$pid" ]; then
            say "$name: running (pid $pid$(started_here "$name" && echo ', started by this script'))"
        elif [ "$name" = munged ] && munge_works; then
            say "munged: running (not started by this script)"
        else
            say "$name: not running"
            rc=1
        fi
    done
    if [ $rc -eq 0 ] && node_ready; then
        say "ready: $(sinfo -h -o '%P %D node(s) %c CPUs %m MB %t')"
    else
        rc=1
    fi
    return $rc
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) die "usage: bash scripts/slurm_local.sh start|stop|status" ;;
esac
