#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for `make slurm-test`: munged + slurmctld + slurmd from
# Debian's packages (slurm-wlm, munge), root as SlurmUser, no accounting daemon, loopback only, and one fake
# GPU per CPU (gres.conf entries with no GPU behind them) so --gpus/--gres requests are accepted and scheduled.
#
#   scripts/slurm_cluster.sh up      install the packages if missing, write the configs, start the daemons
#   scripts/slurm_cluster.sh down    stop exactly the daemons `up` started (by the PIDs it recorded)
#
# The configs go where the clients look (/etc/slurm/slurm.conf, /etc/slurm/gres.conf) before any slurm
# command runs: SLURM_CONF alone does not reach the job steps (they drop SLURM_* variables), and clients
# without a config go looking for a controller through DNS. An existing /etc/slurm/slurm.conf is kept
# aside and put back by `down`. State, logs and PIDs live in $SLURM_TEST_DIR (default /tmp/dualmech-slurm).
set -euo pipefail

DIR=${SLURM_TEST_DIR:-/tmp/dualmech-slurm}
CONF=/etc/slurm/slurm.conf
GRES=/etc/slurm/gres.conf
NODE=$(hostname -s)

die() { echo "slurm_cluster: $*" >&2; exit 1; }

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && return
    [ "$(id -u)" = 0 ] || die "needs root to install slurm-wlm and munge (apt-get install slurm-wlm munge)"
    echo "slurm_cluster: installing slurm-wlm and munge (Debian packages)"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge
}

write_configs() {
    local hw mem ngpu i
    hw=$(slurmd -C | head -n 1)   # NodeName=... CPUs=.. Boards=.. SocketsPerBoard=.. CoresPerSocket=.. ThreadsPerCore=.. RealMemory=..
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
    mem=$((mem * 9 / 10))       # leave the operating system its share; jobs asking for more are refused
    mkdir -p /etc/slurm "$DIR/dev"
    ngpu=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
    for i in $(seq 0 $((ngpu - 1))); do [ -c "$DIR/dev/nvidia$i" ] || mknod "$DIR/dev/nvidia$i" c 1 3; done
    for f in "$CONF" "$GRES"; do
        if [ -e "$f" ] && [ ! -e "$DIR/saved/$(basename "$f")" ]; then mkdir -p "$DIR/saved"; mv "$f" "$DIR/saved/"; fi
    done
    cat >"$CONF" <<EOF
# written by scripts/slurm_cluster.sh (make slurm-test); removed by \`scripts/slurm_cluster.sh down\`
ClusterName=dualmech
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CryptoType=crypto/munge
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/slurmd
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
MinJobAge=86400
SchedulerParameters=sched_interval=2,bf_interval=2
NodeName=$NODE NodeAddr=127.0.0.1 $(grep -o 'CPUs=.*ThreadsPerCore=[0-9]*' <<<"$hw") RealMemory=$mem Gres=gpu:$ngpu State=UNKNOWN
PartitionName=main Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$GRES" <<EOF
# fake GPUs, one per CPU: Slurm drops a file-less GPU, so File= names character devices with /dev/null's numbers
AutoDetect=off
NodeName=$NODE Name=gpu File=$DIR/dev/nvidia[0-$((ngpu - 1))]
EOF
}

alive() {  # a running process (a zombie, which nobody may reap here, counts as ended)
    [ -r "/proc/$1/stat" ] && ! sed 's/.*) //' "/proc/$1/stat" | grep -q '^Z'
}

start() {   # start NAME CMD...: run CMD in the foreground of a new session, record its PID
    setsid "${@:2}" >>"$DIR/$1.out" 2>&1 </dev/null &
    echo $! >"$DIR/$1.started-pid"
}

up() {
    install_packages
    [ "$(id -u)" = 0 ] || die "must run as root (SlurmUser=root)"
    [ -e "$DIR/munged.started-pid" ] && die "already up ($DIR); run \`$0 down\` first"
    mkdir -p "$DIR/ctld" "$DIR/slurmd" /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    [ -s /etc/munge/munge.key ] || { mungekey --create --keyfile=/etc/munge/munge.key; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
    write_configs
    start munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F
    for _ in $(seq 50); do munge -n >/dev/null 2>&1 && break; sleep 0.2; done
    munge -n | unmunge >/dev/null || die "munged did not come up (see $DIR/munged.out)"
    start slurmctld /usr/sbin/slurmctld -D -c     # -c: a fresh cluster, no saved state
    start slurmd /usr/sbin/slurmd -D
    for _ in $(seq 100); do
        sinfo -h -N -o '%t' 2>/dev/null | grep -qx 'idle' && { sinfo -N -o '%N %t %c %m %G'; return; }
        sleep 0.3
    done
    die "node did not become idle (see $DIR/slurmctld.log, $DIR/slurmd.log)"
}

down() {
    local name pid
    for name in slurmd slurmctld munged; do
        [ -e "$DIR/$name.started-pid" ] || continue
        pid=$(cat "$DIR/$name.started-pid")
        if kill "$pid" 2>/dev/null; then
            for _ in $(seq 50); do alive "$pid" || break; sleep 0.2; done
            if alive "$pid"; then kill -KILL "$pid"; fi
        fi
        rm -f "$DIR/$name.started-pid"
    done
    rm -f "$CONF" "$GRES"
    if [ -d "$DIR/saved" ]; then mv "$DIR"/saved/* /etc/slurm/ 2>/dev/null || true; rmdir "$DIR/saved"; fi
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) die "usage: $0 up|down" ;;
esac
