#!/usr/bin/env bash
# Used to run the smoke profile through a real SLURM scheduler (README "On a cluster").
# A one-node SLURM cluster on this machine, as root, no systemd (daemons run directly).
#   slurm_local.sh start   -> writes slurm.conf into a temp folder, starts munged, slurmctld, slurmd;
#                             prints `export SLURM_CONF=...` (also written to $STATE/env)
#   slurm_local.sh stop    -> kills the daemons it started (by their pid files) and removes the folder
#   slurm_local.sh status  -> sinfo + squeue
# Env: ACCOUNTING=filetxt (default) also sets JobCompType=jobcomp/filetxt; ACCOUNTING=none leaves
# it out. There is never a slurmdbd. MIN_JOB_AGE (default 300 s, the SLURM default) is how long
# finished jobs stay visible to squeue.
set -euo pipefail

POINTER=${SLURM_LOCAL_POINTER:-/tmp/slurm_local.dir}   # where `stop` finds the temp folder

die() { echo "slurm_local: $*" >&2; exit 1; }

start() {
    [[ $(id -u) == 0 ]] || die "run as root"
    if [[ -f $POINTER ]] && [[ -d $(cat "$POINTER") ]]; then
        die "already started in $(cat "$POINTER") (run stop first)"
    fi
    command -v slurmctld >/dev/null || die "slurm-wlm not installed (apt-get install -y slurm-wlm munge)"
    local dir host cpus mem_total mem
    dir=$(mktemp -d /tmp/slurm_local.XXXXXX)
    chmod 755 "$dir"
    echo "$dir" > "$POINTER"
    host=$(hostname -s)
    cpus=$(nproc)
    mem_total=$(free -m | awk '/^Mem:/ {print $2}')
    mem=$(( mem_total * 95 / 100 ))          # slurmd drains the node if RealMemory > physical
    mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$dir/run"

    # munge: key if missing, daemon as the munge user (its socket in /run/munge)
    if [[ ! -s /etc/munge/munge.key ]]; then
        mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
            || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 755 /run/munge
    if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
        runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
        echo /run/munge/munged.pid > "$dir/munged.pidfile"   # started by us: stop kills it
        sleep 1
        munge -n </dev/null | unmunge >/dev/null || die "munge does not work"
    fi

    local jobcomp=""
    if [[ ${ACCOUNTING:-filetxt} == filetxt ]]; then
        jobcomp="JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt"
    fi
    cat > "$dir/slurm.conf" <<EOF
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
$jobcomp
MinJobAge=${MIN_JOB_AGE:-300}
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    export SLURM_CONF=$dir/slurm.conf
    echo "export SLURM_CONF=$SLURM_CONF" > "$dir/env"
    # The slurm jobstep plugin runs each rule through `srun` inside the batch job with every
    # SLURM_* variable except a few removed (SLURM_CONF too), so srun needs the default path.
    if [[ ! -e /etc/slurm/slurm.conf ]]; then
        mkdir -p /etc/slurm
        ln -s "$SLURM_CONF" /etc/slurm/slurm.conf
        touch "$dir/etc_link"                                # ours: stop removes it
    fi
    nice -n 10 /usr/sbin/slurmctld -f "$SLURM_CONF"
    nice -n 10 /usr/sbin/slurmd -f "$SLURM_CONF" -N "$host"
    for _ in $(seq 30); do
        if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
            echo "slurm_local: node $host ($cpus CPUs, ${mem} MB) idle in partition debug; conf $SLURM_CONF" >&2
            echo "export SLURM_CONF=$SLURM_CONF"
            return 0
        fi
        sleep 1
    done
    sinfo >&2 || true
    tail -20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
    die "node did not come up"
}

stop() {
    [[ -f $POINTER ]] || { echo "slurm_local: not started" >&2; return 0; }
    local dir pid f
    dir=$(cat "$POINTER")
    for f in "$dir/run/slurmd.pid" "$dir/run/slurmctld.pid"; do
        if [[ -s $f ]]; then
            pid=$(cat "$f")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
            kill -9 "$pid" 2>/dev/null || true
        fi
    done
    if [[ -s $dir/munged.pidfile ]] && [[ -s $(cat "$dir/munged.pidfile") ]]; then
        pid=$(cat "$(cat "$dir/munged.pidfile")")
        kill "$pid" 2>/dev/null || true
    fi
    if [[ -e $dir/etc_link ]] && [[ $(readlink /etc/slurm/slurm.conf) == "$dir/slurm.conf" ]]; then
        rm -f /etc/slurm/slurm.conf
    fi
    [[ $dir == /tmp/slurm_local.* ]] && rm -rf "$dir"
    rm -f "$POINTER"
    echo "slurm_local: stopped, $dir removed" >&2
}

status() {
    [[ -f $POINTER ]] || die "not started"
    export SLURM_CONF=$(cat "$POINTER")/slurm.conf
    sinfo; squeue
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
