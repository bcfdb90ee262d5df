#!/usr/bin/env bash
# Start a single-node Slurm cluster on localhost (munged + slurmctld + slurmd) for the Slurm tests
# (tests/test_slurm_cluster.py) and export PTBENCH_TEST_SLURM=1. Sourced by .ci/run; also runs on its own
# (`bash .ci/slurm.sh`) to give a developer the same cluster. Installs Debian's slurmctld, slurmd,
# slurm-client and munge if missing. Needs root (slurmd runs jobs as their users) and no systemd: the daemons
# are started directly. Idempotent: a cluster already answering `sinfo` is left as it is.
# The configuration keeps the tests quick: the scheduler looks every 2 s (sched_interval, bf_interval), a killed
# job's processes get 20 s between SIGTERM and SIGKILL (KillWait), ended jobs leave squeue after 30 s
# (MinJobAge). Slurm still holds a requeued batch job back for about two minutes (its begin time, not
# configurable); the tests move it with `scontrol update jobid=J StartTime=now`. No accounting (sacct): job
# states come from squeue.
set -euo pipefail
slurm_up() { timeout 5 sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; }
if command -v sinfo >/dev/null && slurm_up; then
    export PTBENCH_TEST_SLURM=1
    return 0 2>/dev/null || exit 0
fi
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q && apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge
fi
host="$(hostname -s)"
cpus="$(nproc)"
mem_mb="$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))"
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /var/lib/munge /var/log/munge
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=ptbench
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
MinJobAge=30
KillWait=20
SchedulerParameters=sched_interval=2,bf_interval=2
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
rm -f /etc/slurm/cgroup.conf  # no cgroups: proctrack/linuxproc tracks a job by its process tree
[ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 400 /etc/munge/munge.key
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 1 30); do slurm_up && break; sleep 1; done
slurm_up || { echo ".ci/slurm.sh: Slurm did not come up; see /var/log/slurm/" >&2; tail -n 20 /var/log/slurm/*.log >&2; exit 1; }
export PTBENCH_TEST_SLURM=1
