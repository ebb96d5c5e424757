#!/usr/bin/env bash
# slurm-cluster: the Slurm executor against a real cluster. Starts a one-node Slurm cluster
# (Debian's slurm-wlm and munge) on 127.0.0.1 as root, in a private directory under /tmp with a
# generated slurm.conf (select/cons_tres, proctrack/linuxproc, no cgroups, no accounting daemon:
# the executor's squeue fallback is what answers), runs the checks, and tears it all down at exit.
#   1. the smoke linear-probe table through --executor slurm gives the local executor's results
#      (RESULTS, default results/linear-probe/smoke/results.json; run locally first when absent)
#   2. a job cancelled with scancel is retried, and its table completes
#   3. a job over its time limit fails, the message naming the Slurm state (TIMEOUT)
#   4. igpt train as two srun ranks (PMIx) gives one process's loss curve
# 2 and 3 run on the orchestrator's fixture suite (tests/fixtures/jobs, shell stand-ins for the
# verbs), 3 in the background from the start since Slurm enforces limits in whole minutes.
# If the daemons cannot start, this fails with their log (never a skip). .ci/run calls it.
# usage: ci/slurm-cluster.sh [RESULTS]     (BUILD=build-san for the sanitizer build)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
IGPT=$ROOT/${BUILD:-build}/igpt
LOCAL=${1:-results/linear-probe/smoke/results.json}
fail() { echo "slurm-cluster: FAILED: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root: slurmd starts every job as its user"
for c in munged slurmctld slurmd sbatch squeue scancel srun; do
  command -v $c >/dev/null || fail "$c not found; install Debian's slurm-wlm and munge (make test-deps does)"
done
[ -x "$IGPT" ] || fail "$IGPT not built; run make"

D=$(mktemp -d /tmp/igpt-slurm-XXXXXX)
chmod 755 "$D"
export SLURM_CONF=$D/slurm.conf
teardown() {
  set +e
  scancel --full --quiet $(squeue -h -o %i 2>/dev/null) 2>/dev/null
  for p in slurmd slurmctld munged; do
    [ -f "$D/$p.pid" ] && kill "$(cat "$D/$p.pid")" 2>/dev/null
  done
  sleep 1
  for p in slurmd slurmctld munged; do
    [ -f "$D/$p.pid" ] && kill -9 "$(cat "$D/$p.pid")" 2>/dev/null
  done
  [ -n "${KEEP_SLURM_DIR:-}" ] || rm -rf "$D"
}
trap teardown EXIT
logs() { for f in "$D"/log/*.log; do echo "---- $f"; tail -n 20 "$f"; done >&2; }

# munge: a fresh key and its own socket (AuthInfo below points Slurm at it)
mkdir -p "$D"/{munge,state,spool,log}
chmod 700 "$D/munge"
dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$D/munge/munge.key"
munged --key-file="$D/munge/munge.key" --socket="$D/munge/munge.sock" --pid-file="$D/munged.pid" \
  --log-file="$D/log/munged.log" --seed-file="$D/munge/seed" --force \
  || { logs; fail "munged did not start"; }

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
host=$(hostname -s)
# More CPUs than the machine has (config_overrides): the background time-limit job must not
# hold up the table's jobs, which each ask for 2.
cat > "$SLURM_CONF" <<EOF
ClusterName=igpt-ci
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge/munge.sock
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
MpiDefault=none
ReturnToService=2
MinJobAge=900
KillWait=2
InactiveLimit=0
NodeName=igpt-ci-node NodeAddr=127.0.0.1 NodeHostname=$host CPUs=8 RealMemory=8000 State=UNKNOWN
PartitionName=ci Nodes=igpt-ci-node Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -f "$SLURM_CONF" || { logs; fail "slurmctld did not start"; }
slurmd -f "$SLURM_CONF" -N igpt-ci-node || { logs; fail "slurmd did not start"; }
up=
for _ in $(seq 1 30); do
  if sinfo -h -o %T 2>/dev/null | grep -q idle; then up=1; break; fi
  sleep 1
done
[ -n "$up" ] || { sinfo >&2 || true; logs; fail "the node did not come up idle within 30 s"; }
echo "slurm-cluster: $(sinfo -h -o '%P %D node(s) %c CPUs %T') (conf $SLURM_CONF)"

FX=$ROOT/tests/fixtures/jobs
fixture_run() {  # NAME [env...]: the fixture table alpha through Slurm, in $D/NAME
  local name=$1; shift
  mkdir -p "$D/$name"
  env FAKE_LOG="$D/$name/fake.log" FAKE_STATE="$D/$name" IGPT_PLAIN=1 IGPT_RETRY_BACKOFF=0.5 IGPT_SLURM_CPUS=1 "$@" \
    "$IGPT" run alpha --suite "$FX" --executor slurm --jobs 2 --cache "$D/$name/cache" --results "$D/$name/results" \
    > "$D/$name/runner.log" 2>&1
}

# 3, started first: pretraining sleeps 6 x 30 s under a 1-minute limit
fixture_run timeout IGPT_SBATCH_ARGS=--time=1 FAKE_STEP_SLEEP=30 &
timeout_pid=$!

# 1. the smoke table, local results first when there are none
if [ ! -f "$LOCAL" ]; then
  echo "slurm-cluster: no $LOCAL; running the table locally first"
  IGPT_PLAIN=1 "$IGPT" run linear-probe --scale smoke --cache "$D/local-cache" --results "$D/local-results" >/dev/null
  LOCAL=$D/local-results/linear-probe/smoke/results.json
fi
t0=$(date +%s)
IGPT_PLAIN=1 "$IGPT" run linear-probe --scale smoke --executor slurm --jobs 2 --cache "$D/cache" --results "$D/results" \
  > "$D/smoke.log" 2>&1 || { cat "$D/smoke.log" >&2; logs; fail "the smoke table failed under Slurm"; }
/usr/bin/python3 - "$LOCAL" "$D/results/linear-probe/smoke/results.json" <<'EOF' || fail "the Slurm executor's results differ from the local executor's"
import json, sys
def rows(p):
    r = json.load(open(p))
    return [(row.get("id"), [(run.get("job"), run.get("status"), run.get("value"), run.get("best_layer"),
                             run.get("layer_accuracy")) for run in row.get("runs", [])]) for row in r["rows"]]
a, b = rows(sys.argv[1]), rows(sys.argv[2])
for x, y in zip(a, b):
    print("  %-28s local %s, slurm %s" % (x[0], [r[2] for r in x[1]], [r[2] for r in y[1]]))
sys.exit(0 if a == b and a else 1)
EOF
echo "slurm-cluster: 1. the smoke linear-probe table under Slurm ($(( $(date +%s) - t0 )) s) gives the local results"

# 2. cancel the running pretraining: the runner retries it and the table completes
fixture_run cancel FAKE_STEP_SLEEP=1 &
cancel_pid=$!
id=
for _ in $(seq 1 60); do
  id=$(squeue -h -t RUNNING -O "JobID:12,Name:64,StdOut:256" | awk -v d="$D/cancel/" '$2 ~ /^igpt-pretrain-/ && index($3, d) == 1 {print $1; exit}')
  [ -n "$id" ] && break
  sleep 0.5
done
[ -n "$id" ] || { cat "$D/cancel/runner.log" >&2; fail "the fixture's pretraining never ran under Slurm"; }
sleep 2
scancel "$id"
wait $cancel_pid || { cat "$D/cancel/runner.log" >&2; fail "the table did not complete after a scancel"; }
grep -q "retry .*pretrain.*Slurm state CANCELLED" "$D/cancel/runner.log" \
  || { cat "$D/cancel/runner.log" >&2; fail "the cancelled job was not retried (no retry line naming CANCELLED)"; }
grep -q "^resume " "$D/cancel/fake.log" || fail "the retried pretraining did not resume from its checkpoint"
echo "slurm-cluster: 2. Slurm job $id cancelled with scancel was retried, resumed, and the table completed"

# 4. data parallel under srun: two ranks (PMIx) match one process
T=$D/dp
mkdir -p "$T"
ci/write_tokens.py "$T/tokens.safetensors" 64 32 16 7
echo '{"n_layer": 2, "n_embd": 32, "n_head": 4, "n_ctx": 32, "n_vocab": 16}' > "$T/config.json"
args="--config $T/config.json --tokens $T/tokens.safetensors --steps 12 --batch 8 --lr 0.003 --quiet"
OMP_NUM_THREADS=1 "$IGPT" train $args --out "$T/one"
cat > "$T/job.sh" <<EOF
#!/bin/sh
export OMP_NUM_THREADS=1
srun --mpi=pmix --kill-on-bad-exit=1 --ntasks=2 $IGPT train $args --out $T/two --json
EOF
sbatch --parsable --wait --ntasks=2 --cpus-per-task=1 --time=5 --output="$T/out.log" --error="$T/err.log" "$T/job.sh" >/dev/null \
  || { cat "$T/err.log" >&2; fail "igpt train over two srun ranks failed"; }
grep -q '"world_size":2' "$T/out.log" || { cat "$T/out.log" "$T/err.log" >&2; fail "the srun ranks did not form a world of 2"; }
/usr/bin/python3 - "$T/one/log.jsonl" "$T/two/log.jsonl" <<'EOF' || fail "two srun ranks' loss curve differs from one process's"
import json, sys
a = [json.loads(l)["loss"] for l in open(sys.argv[1])]
b = [json.loads(l)["loss"] for l in open(sys.argv[2])]
worst = max(abs(x - y) / abs(x) for x, y in zip(a, b))
print("  %d steps, largest relative loss difference %.2g (bound 1e-5, tests/test_dist.c)" % (len(a), worst))
sys.exit(0 if len(a) == len(b) == 12 and worst <= 1e-5 else 1)
EOF
echo "slurm-cluster: 4. igpt train as 2 srun ranks gives one process's loss curve"

# 3. the time limit
if wait $timeout_pid; then cat "$D/timeout/runner.log" >&2; fail "a job over its 1-minute time limit did not fail"; fi
grep -q "FAILED .*pretrain.*Slurm state TIMEOUT" "$D/timeout/runner.log" \
  || { cat "$D/timeout/runner.log" >&2; fail "the time-limit failure does not name the Slurm state TIMEOUT"; }
echo "slurm-cluster: 3. $(grep -o 'FAILED .*Slurm state TIMEOUT)' "$D/timeout/runner.log" | head -1)"
echo "slurm-cluster: all checks passed"
