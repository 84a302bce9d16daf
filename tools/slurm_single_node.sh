#!/bin/bash
# Starts a single-node Slurm on this machine (as root: munged, slurmctld and slurmd on 127.0.0.1,
# no cgroups, state in a temporary folder), runs `srun --mpi=pmix -n 2 tlkit rank` on two small kit
# models end to end, checks that its CSV equals the one-process run's, and stops what it started.
#
#   tools/slurm_single_node.sh [TLKIT [KIT]]     # defaults: build/apps/cli/tlkit, ../shared/kit
#
# Needs Debian's slurmctld, slurmd, slurm-client and munge (Slurm 22.05 on Debian 12; their
# slurm-wlm-basic-plugins carry mpi_pmix), installed with apt-get when missing, and tlkit built
# with MPI (TLKIT_MPI). Debian's Open MPI starts under srun with --mpi=pmix only (pmi2 and none
# fail). Exit status 0 when the split run matches.
set -euo pipefail

TLKIT=$(realpath "${1:-build/apps/cli/tlkit}")
KIT=$(realpath "${2:-../shared/kit}")
[ -x "$TLKIT" ] || { echo "slurm_single_node: no tlkit at $TLKIT" >&2; exit 2; }
[ -f "$KIT/models/zoo.json" ] || { echo "slurm_single_node: no kit at $KIT" >&2; exit 2; }
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
   ! command -v srun >/dev/null || ! command -v munged >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    slurmctld slurmd slurm-client munge >/dev/null
fi

WORK=$(mktemp -d /tmp/tlkit-slurm.XXXXXX)
chmod 755 "$WORK"  # munged runs as the munge user
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# munge: the key the package created; a daemon of our own on its own socket.
mkdir -p "$WORK/munge" && chown munge: "$WORK/munge"
[ -f /etc/munge/munge.key ] || runuser -u munge -- /usr/sbin/mungekey --create
runuser -u munge -- /usr/sbin/munged --socket="$WORK/munge/munge.socket" \
  --pid-file="$WORK/munge/munged.pid" --seed-file="$WORK/munge/seed" --log-file="$WORK/munge/log"
PIDS+=("$(cat "$WORK/munge/munged.pid")")

NODE=$(hostname -s)
mkdir -p "$WORK/state" "$WORK/spool"
cat >"$WORK/slurm.conf" <<CONF
ClusterName=tlkit
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$WORK/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=local Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE
CONF
export SLURM_CONF="$WORK/slurm.conf"
slurmctld -i
slurmd
sleep 1
PIDS+=("$(cat "$WORK/slurmctld.pid")" "$(cat "$WORK/slurmd.pid")")
for _ in $(seq 60); do
  sinfo -h -o %t 2>/dev/null | grep -q -E '^(idle|mix)' && break
  sleep 0.5
done
sinfo

# Open MPI on one machine without a network: shared memory and loopback.
export OMPI_MCA_btl=self,vader OMPI_MCA_oob_tcp_if_include=lo
ARGS=(rank --zoo "$KIT/models/zoo.json" --models cifar10_resnet20,cifar10_resnet32
      --data "$KIT/data/cifar10-test" --per-class 6 --threads 1 --no-cache --quiet)
"$TLKIT" "${ARGS[@]}" --out "$WORK/one.csv"
srun --mpi=pmix -n 2 --kill-on-bad-exit=1 "$TLKIT" "${ARGS[@]}" --out "$WORK/srun.csv"
cat "$WORK/srun.csv"
if cmp -s "$WORK/one.csv" "$WORK/srun.csv"; then
  echo "slurm_single_node: srun --mpi=pmix -n 2 wrote the one-process CSV, byte for byte"
else
  echo "slurm_single_node: the CSVs differ" >&2
  diff "$WORK/one.csv" "$WORK/srun.csv" >&2 || true
  exit 1
fi
