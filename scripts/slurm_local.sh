#!/usr/bin/env bash
# A real single-node SLURM (munged + slurmctld + slurmd) on loopback, for tests and for trying the
# SLURM profile on a laptop. Recipe and gotchas: shared/reference/slurm_local.md.
#
#   scripts/slurm_local.sh start DIR   # install if missing, start, wait until the node is idle
#   scripts/slurm_local.sh stop DIR    # stop exactly the daemons `start DIR` started, by pid
#   scripts/slurm_local.sh status DIR
#
# DIR holds state, spool, logs and the pid of every daemon this script started (DIR/pids). Nothing
# else is ever killed: a munged that was already running is reused and left alone. The config must
# be /etc/slurm/slurm.conf (inside a job the jobstep plugin drops SLURM_CONF, so `srun` would not
# find any other path); an existing one (and /etc/slurm/gres.conf) is saved to DIR and put back by
# `stop`.
# Needs root (daemons, /etc/slurm). Partition: "debug" (the default one).
set -euo pipefail

cmd=${1:-}
D=${2:-}
[[ -n "$cmd" && -n "$D" ]] || { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }
mkdir -p "$D"
D=$(cd "$D" && pwd)
CONF=/etc/slurm/slurm.conf
GRES=/etc/slurm/gres.conf
MARK="# polysent slurm_local: written by scripts/slurm_local.sh for $D;"
PIDS=$D/pids

die() { echo "slurm_local: $*" >&2; exit 1; }

install_if_missing() {
  local missing=()
  for b in slurmctld slurmd munged sbatch squeue; do
    command -v "$b" >/dev/null || [ -x "/usr/sbin/$b" ] || missing+=("$b")
  done
  ((${#missing[@]} == 0)) && return 0
  [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]} and not root: apt-get install slurm-wlm munge"
  echo "slurm_local: installing slurm-wlm and munge (missing: ${missing[*]})"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurm-wlm slurmctld slurmd slurm-client munge >/dev/null
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

wait_pidfile() {  # daemons fork; their pid file appears a moment later
  for _ in $(seq 1 100); do [ -s "$1" ] && { cat "$1"; return 0; }; sleep 0.1; done
  return 1
}

start() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (it starts daemons and writes $CONF)"
  install_if_missing
  [ -s "$PIDS" ] && die "$D already has running daemons ($PIDS); run '$0 stop $D' first"
  # A SLURM controller that is not ours (a real cluster, another test) owns the config: refuse.
  if pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null; then
    die "a slurmctld/slurmd is already running on this host (pids: $(pgrep -x 'slurmctld|slurmd' | tr '\n' ' ')); not touching it"
  fi
  mkdir -p "$D/state" "$D/spool" "$D/log"
  : >"$PIDS"
  trap 'echo "slurm_local: start failed, stopping what was started" >&2; stop' EXIT

  # munge: reuse a working daemon, else start ours.
  if ! { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }; then
    [ -s /etc/munge/munge.key ] || /usr/sbin/mungekey --create --force
    chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
    install -d -o munge -g munge -m 0755 /run/munge
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged
    pid=$(wait_pidfile /run/munge/munged.pid) || die "munged did not start"
    echo "munged $pid" >>"$PIDS"
  fi

  for f in "$CONF" "$GRES"; do
    if [ -e "$f" ] && ! grep -q '^# polysent slurm_local' "$f"; then
      cp -p "$f" "$D/$(basename "$f").saved"
    fi
  done
  # One GPU GRES backed by /dev/null: a stand-in so that the profile's GPU requests (--gpus=1 on
  # training rules) are accepted and scheduled as on a real cluster; the job itself finds no CUDA
  # and trains on the CPU.
  printf '%s removed by stop.\nNodeName=localhost Name=gpu File=/dev/null\n' "$MARK" >"$GRES"
  local cpus mem
  cpus=$(nproc)
  mem=$(($(free -m | awk '/^Mem:/{print $2}') - 1024))
  cat >"$CONF" <<CONF
$MARK removed by 'stop'.
ClusterName=polysent-local
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
# Memory is not a consumable here (no cgroups on a test VM): jobs asking for a stage's mem_mb
# still run side by side; they are rejected only if they ask for more than the node has.
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
# squeue must still show finished jobs when snakemake polls (it uses squeue: no accounting DB).
MinJobAge=300
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  cp "$CONF" "$D/slurm.conf.generated"

  rm -f "$D/slurmctld.pid" "$D/slurmd.pid"
  /usr/sbin/slurmctld
  pid=$(wait_pidfile "$D/slurmctld.pid") || die "slurmctld did not start; see $D/log/slurmctld.log"
  echo "slurmctld $pid" >>"$PIDS"
  /usr/sbin/slurmd -N localhost  # -N: the node is called localhost whatever the hostname
  pid=$(wait_pidfile "$D/slurmd.pid") || die "slurmd did not start; see $D/log/slurmd.log"
  echo "slurmd $pid" >>"$PIDS"

  for _ in $(seq 1 150); do
    if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
      trap - EXIT
      echo "slurm_local: node idle ($D)"
      return 0
    fi
    sleep 0.2
  done
  sinfo >&2 || true
  die "node never became idle; logs in $D/log"
}

stop() {
  local rc=0
  if [ -s "$PIDS" ]; then
    # Reverse order: slurmd, slurmctld, then munged (only if we started it).
    while read -r name pid; do
      if alive "$pid"; then
        kill "$pid" || true
        for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
        if alive "$pid"; then kill -9 "$pid" || true; fi
        echo "slurm_local: stopped $name ($pid)"
      fi
    done < <(tac "$PIDS")
    : >"$PIDS"
  fi
  for f in "$CONF" "$GRES"; do
    if [ -e "$f" ] && grep -qF "$MARK" "$f"; then
      rm -f "$f"
      if [ -e "$D/$(basename "$f").saved" ]; then mv "$D/$(basename "$f").saved" "$f"; fi
    fi
  done
  return $rc
}

status() {
  [ -s "$PIDS" ] || { echo "slurm_local: nothing started from $D"; return 1; }
  while read -r name pid; do
    if alive "$pid"; then echo "$name $pid running"; else echo "$name $pid gone"; fi
  done <"$PIDS"
  sinfo || true
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status DIR" >&2; exit 2 ;;
esac
