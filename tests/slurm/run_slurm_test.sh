#!/usr/bin/env bash
# Real SLURM test: starts a single-node SLURM cluster on this machine (munged, slurmctld and
# slurmd, all on 127.0.0.1), runs the demo workflow through snakemake-executor-plugin-slurm
# with profiles/slurm, runs it again locally, and checks every results TSV (except
# results/benchmarks) is byte-identical between the two runs.
#
# Usage: tests/slurm/run_slurm_test.sh [--keep] [--no-install] [--workdir DIR]
#   --keep        leave the daemons running and the run directories in place (stop them
#                 later with: tests/slurm/run_slurm_test.sh --stop)
#   --start       only start the cluster and leave it running (for trying things by hand)
#   --stop        stop daemons left running by --keep or --start, and exit
#   --no-install  do not apt-get install slurm-wlm/munge when missing (fail instead)
#   --workdir DIR where the two runs go (default: a new mktemp directory, removed on success)
# Environment: PREPOST_PYTHON (default .venv/bin/python), PREPOST_SLURM_STATE (daemons'
#   config, state and logs; default /tmp/prepost-slurm), PREPOST_SLURM_PORT (slurmctld port,
#   default 16817; slurmd uses the next one).
#
# Needs root (apt-get, daemons) and a Debian/Ubuntu system. No accounting daemon (slurmdbd) is
# started: jobs are followed with `squeue` (the plugin's --slurm-status-command squeue), which
# sees finished jobs for MinJobAge seconds (set to 7200 here).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=${PREPOST_PYTHON:-$ROOT/.venv/bin/python}
STATE=${PREPOST_SLURM_STATE:-/tmp/prepost-slurm}
CTLD_PORT=${PREPOST_SLURM_PORT:-16817}
D_PORT=$((CTLD_PORT + 1))
KEEP=0
INSTALL=1
STOP_ONLY=0
START_ONLY=0
WORK=""

while [[ $# -gt 0 ]]; do
    case "$1" in
        --keep) KEEP=1 ;;
        --stop) STOP_ONLY=1 ;;
        --start) START_ONLY=1; KEEP=1 ;;
        --no-install) INSTALL=0 ;;
        --workdir) WORK=$2; shift ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "run_slurm_test.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { echo "[slurm-test $(date +%H:%M:%S)] $*"; }
die() { echo "[slurm-test] FAILED: $*" >&2; exit 1; }

export SLURM_CONF=$STATE/slurm.conf

stop_pidfile() {  # stop one daemon we started, by the pid in its pid file
    local pidfile=$1 pid i
    [[ -s $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

stop_daemons() {
    stop_pidfile "$STATE/slurmd.pid"
    stop_pidfile "$STATE/slurmctld.pid"
    stop_pidfile "$STATE/munge/munged.pid"
    # slurmd's link to its cached configuration (configless mode), if it points to ours
    if [[ -L /run/slurm/conf && $(readlink /run/slurm/conf) == "$STATE"/* ]]; then
        rm -f /run/slurm/conf
    fi
}

if [[ $STOP_ONLY == 1 ]]; then
    stop_daemons
    say "stopped the daemons of $STATE"
    exit 0
fi

[[ $(id -u) == 0 ]] || die "must run as root (installs packages and starts munged/slurmctld/slurmd)"
[[ -x $PY ]] || die "no Python at $PY (run 'make setup' or set PREPOST_PYTHON)"
"$PY" -c 'import snakemake_executor_plugin_slurm' 2>/dev/null \
    || die "snakemake-executor-plugin-slurm is not installed in $PY (pip install -r requirements.txt)"

# --- 1. packages ---------------------------------------------------------------------------
need=()
for cmd in slurmctld slurmd sbatch squeue sinfo munged; do
    command -v "$cmd" >/dev/null || need+=("$cmd")
done
if [[ ${#need[@]} -gt 0 ]]; then
    [[ $INSTALL == 1 ]] || die "missing ${need[*]} and --no-install given"
    say "installing slurm-wlm and munge (missing: ${need[*]})"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null \
        || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null; } \
        || die "apt-get install slurm-wlm munge failed"
fi
SLURM_VERSION=$(slurmd -V | awk '{print $2}')
PLUGIN_VERSION=$("$PY" -c 'from importlib.metadata import version as v; print(v("snakemake-executor-plugin-slurm"), "(jobstep", v("snakemake-executor-plugin-slurm-jobstep") + ")")')
SNAKEMAKE_VERSION=$("$PY" -m snakemake --version)
say "SLURM $SLURM_VERSION, snakemake $SNAKEMAKE_VERSION, snakemake-executor-plugin-slurm $PLUGIN_VERSION"

# --- 2. configuration ----------------------------------------------------------------------
stop_daemons  # a previous --keep run of this script
mkdir -p "$STATE/ctld" "$STATE/slurmd"
if [[ ! -s /etc/munge/munge.key ]]; then
    say "creating /etc/munge/munge.key"
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
fi
install -d -o munge -g munge -m 0755 "$STATE/munge"

NODE=$(hostname -s)
# CPUs, sockets, cores, threads and memory as slurmd detects them on this machine.
HW=$(slurmd -C | head -1 | sed -E 's/^NodeName=[^ ]+ //')
[[ $HW == *RealMemory=* ]] || die "could not read the hardware from 'slurmd -C': $HW"
cat > "$SLURM_CONF" <<EOF
# Written by tests/slurm/run_slurm_test.sh: a one-node test cluster on 127.0.0.1.
ClusterName=prepost-test
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$D_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# Finished jobs stay visible to squeue for 2 hours: the plugin's squeue status route, and the
# final count of completed jobs (a run under load took 12 min, longer than the former 10).
MinJobAge=7200
KillWait=5
# Configless: slurmd fetches this file from slurmctld and caches it in /run/slurm/conf, where
# the nested srun of each job finds it (the jobstep plugin drops SLURM_CONF from its env).
SlurmctldParameters=enable_configless
InactiveLimit=0
NodeName=$NODE NodeAddr=127.0.0.1 $HW State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF

# --- 3. daemons ----------------------------------------------------------------------------
cleanup() {
    local rc=$?
    if [[ $KEEP == 1 ]]; then
        say "--keep: daemons left running (SLURM_CONF=$SLURM_CONF; stop: $0 --stop), runs in $WORK"
    else
        stop_daemons
        say "daemons stopped"
        [[ $rc == 0 && $WORK_IS_TEMP == 1 ]] && rm -rf "$WORK"
        [[ $rc != 0 ]] && say "runs kept for inspection in $WORK; daemon logs in $STATE"
    fi
    return $rc
}
WORK_IS_TEMP=0
if [[ -z $WORK ]]; then WORK=$(mktemp -d /tmp/prepost-slurm-run.XXXXXX); WORK_IS_TEMP=1; fi
mkdir -p "$WORK"
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting munged, slurmctld, slurmd (state in $STATE)"
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "using the munged already running on this machine"
else
    # The default socket (/run/munge/munge.socket.2): slurmd fetches its configuration from
    # slurmctld before it could read a socket path from slurm.conf.
    install -d -o munge -g munge -m 0755 /run/munge
    runuser -u munge -- munged --pid-file="$STATE/munge/munged.pid" \
        --log-file="$STATE/munge/munged.log" --seed-file="$STATE/munge/munged.seed" \
        || die "munged did not start (see $STATE/munge/munged.log)"
fi
slurmctld -f "$SLURM_CONF" -c -i || die "slurmctld did not start (see $STATE/slurmctld.log)"
slurmd --conf-server "127.0.0.1:$CTLD_PORT" || die "slurmd did not start (see $STATE/slurmd.log)"

for i in $(seq 60); do
    state=$(sinfo -h -N -o %T 2>/dev/null | head -1 || true)
    [[ $state == idle ]] && break
    sleep 1
done
[[ $state == idle ]] || die "node not idle after 60 s (sinfo state '$state'); see $STATE/slurmctld.log and $STATE/slurmd.log"
say "cluster up: $(sinfo -h -N -o '%N %T cpus=%c mem=%m MB partition=%P')"
[[ $START_ONLY == 1 ]] && exit 0

# --- 4. the two runs -----------------------------------------------------------------------
write_config() {  # the config of tests/conftest.py: results and resources in the run dir
    "$PY" - "$ROOT" "$1" <<'PYEOF'
import sys
from pathlib import Path
root, workdir = Path(sys.argv[1]), Path(sys.argv[2])
sys.path.insert(0, str(root / "tests"))
from conftest import write_config  # noqa: E402
write_config(workdir, str(root / "resources/demo/geo"))
PYEOF
}

run_snakemake() {  # run_snakemake NAME extra-args...; prints the wall time in seconds
    # Both runs happen in the same directory ($WORK/run, then moved to $WORK/NAME), so that
    # paths recorded inside result tables are the same and the comparison is byte for byte.
    local name=$1 dir=$WORK/run start end; shift
    rm -rf "$dir" "$WORK/$name"
    mkdir -p "$dir"
    write_config "$dir"
    start=$(date +%s.%N)
    if ! (cd "$dir" && timeout 1800 "$PY" -m snakemake -s "$ROOT/Snakefile" --directory "$dir" \
            --configfile "$dir/config.yaml" "$@" >"$dir/snakemake.log" 2>&1); then
        mv "$dir" "$WORK/$name"
        tail -n 60 "$WORK/$name/snakemake.log" >&2
        die "the $name run failed (full log: $WORK/$name/snakemake.log)"
    fi
    end=$(date +%s.%N)
    mv "$dir" "$WORK/$name"
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", e - s }'
}

say "local run (--cores 2)"
T_LOCAL=$(run_snakemake local --cores 2)
say "local run: ${T_LOCAL} s"

say "SLURM run (--executor slurm --profile profiles/slurm)"
T_SLURM=$(run_snakemake slurm --executor slurm --profile "$ROOT/profiles/slurm" \
    --slurm-status-command squeue --slurm-init-seconds-before-status-checks 2 \
    --slurm-keep-successful-logs --latency-wait 10)
say "SLURM run: ${T_SLURM} s"

# --- 5. checks -----------------------------------------------------------------------------
# Every job really went through SLURM: one completed SLURM job per Snakemake job.
n_jobs=$(grep -cE '^\s*(localrule|rule) ' "$WORK/slurm/snakemake.log" || true)
n_local=$(grep -cE '^\s*localrule ' "$WORK/slurm/snakemake.log" || true)
n_slurm=$(squeue -h --states=all -o '%j %T' | grep -c ' COMPLETED$' || true)
n_failed=$(squeue -h --states=all -o '%j %T' | grep -vc ' COMPLETED$' || true)
say "SLURM jobs completed: $n_slurm (Snakemake jobs: $n_jobs, of which local: $n_local)"
[[ $n_failed == 0 ]] || { squeue --states=all >&2; die "$n_failed SLURM jobs did not complete"; }
[[ $n_slurm -ge 1 && $n_slurm == $((n_jobs - n_local)) ]] \
    || die "expected $((n_jobs - n_local)) completed SLURM jobs, squeue shows $n_slurm"
for rule in download prepare de claims; do
    ls "$WORK"/slurm/.snakemake/slurm_logs/rule_"$rule"/*/*.log >/dev/null 2>&1 \
        || ls "$WORK"/slurm/.snakemake/slurm_logs/rule_"$rule"/*.log >/dev/null 2>&1 \
        || die "no SLURM log for rule $rule: it did not run through SLURM"
done

# Every results TSV is byte-identical between the two runs.
list_tsvs() { (cd "$1/results" && find . -name '*.tsv' -not -path './benchmarks/*' | sort); }
if ! diff <(list_tsvs "$WORK/local") <(list_tsvs "$WORK/slurm") >"$WORK/filelist.diff"; then
    cat "$WORK/filelist.diff" >&2
    die "the local and SLURM runs wrote different sets of TSV files (< local, > slurm)"
fi
n_tsv=0
differ=()
while read -r rel; do
    n_tsv=$((n_tsv + 1))
    cmp -s "$WORK/local/results/$rel" "$WORK/slurm/results/$rel" || differ+=("$rel")
done < <(list_tsvs "$WORK/local")
[[ $n_tsv -ge 7 ]] || die "only $n_tsv result TSVs found; expected at least 7"
if [[ ${#differ[@]} -gt 0 ]]; then
    for rel in "${differ[@]}"; do
        echo "--- differs: results/${rel#./}" >&2
        diff "$WORK/local/results/$rel" "$WORK/slurm/results/$rel" | head -n 10 >&2 || true
    done
    die "${#differ[@]} of $n_tsv result TSVs differ between the local and the SLURM run"
fi
say "OK: $n_tsv result TSVs byte-identical; local ${T_LOCAL} s, SLURM ${T_SLURM} s" \
    "(SLURM $SLURM_VERSION, plugin $PLUGIN_VERSION, snakemake $SNAKEMAKE_VERSION)"
