#!/usr/bin/env bash
# The sharded evaluation on a real Slurm cluster: installs Slurm and munge from Debian's
# packages, starts a one-node cluster on this machine (tests/slurm/cluster.sh), submits a
# small `eval` as a job array of 4 shards with the README's template, cancels one array task
# midway, checks that `blindspot merge` names what that task left missing, resubmits only
# that index, merges, and checks that the merged folder equals an unsharded run's, file for
# file. Needs root (packages, daemons). About a minute on 2 cores once Slurm is installed.
#
#   tests/slurm/run.sh [path/to/blindspot]     (default: target/debug/blindspot, built if missing)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

if [ "$(id -u)" -ne 0 ]; then
  exec sudo -E "$0" "$@"
fi
BIN=${1:-$ROOT/target/debug/blindspot}
if [ ! -x "$BIN" ]; then
  cargo build --locked
fi
BIN=$(realpath "$BIN")

WORK=$(mktemp -d)
# shellcheck source=tests/slurm/cluster.sh
source "$ROOT/tests/slurm/cluster.sh"
trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
start_cluster "$WORK/cluster"
echo "slurm: $(sinfo -h -o '%P %D %T %C')"

# Enough iterations that a task is still walking when it is cancelled.
ARGS=(eval --images "$ROOT/assets/gallery" --pairs 24 --pool 6 --batch 2 --iterations 150)
"$BIN" "${ARGS[@]}" --out "$WORK/whole" >/dev/null

wait_for_job() {
  for _ in $(seq 1 600); do
    if [ -z "$(squeue -h -j "$1" 2>/dev/null)" ]; then return 0; fi
    sleep 0.5
  done
  echo "error: job $1 did not end" >&2
  squeue >&2
  return 1
}

# The README's template: each task is shard $SLURM_ARRAY_TASK_ID of 4.
submit() {
  sbatch --parsable --array="$1" --mem=1G --cpus-per-task=1 \
    --output="$WORK/task-%A_%a.log" \
    --wrap="$BIN ${ARGS[*]} --out $WORK/sharded --shard \$SLURM_ARRAY_TASK_ID/4"
}
job=$(submit 0-3)
echo "submitted job array $job (4 shards)"

# Task 1 owns batches 1, 5 and 9 (pairs 2-3, 10-11, 18-19): cancel it once its first batch
# is on disk, while it walks its second.
for _ in $(seq 1 1200); do
  [ -f "$WORK/sharded/pairs/pair_00002.json" ] && break
  sleep 0.1
done
scancel "${job}_1"
wait_for_job "$job"
if [ -f "$WORK/sharded/shards/shard_1_of_4.json" ]; then
  echo "error: task 1 finished before it was cancelled; the test did not cancel anything" >&2
  exit 1
fi
for i in 0 2 3; do
  if [ ! -f "$WORK/sharded/shards/shard_${i}_of_4.json" ]; then
    echo "error: shard $i did not finish:" >&2
    cat "$WORK"/task-*_"$i".log >&2 || true
    exit 1
  fi
done

# merge names the missing pairs and the shard to resubmit, and writes no table.
if "$BIN" merge "$WORK/sharded" 2>"$WORK/merge1.err"; then
  echo "error: merge succeeded with a cancelled shard" >&2
  exit 1
fi
grep -q "items missing" "$WORK/merge1.err"
grep -q "shard(s) 1 of 4" "$WORK/merge1.err"
[ ! -f "$WORK/sharded/tables.json" ]
echo "merge with task 1 cancelled: $(cat "$WORK/merge1.err")"

# Resubmit only index 1, then merge.
job=$(submit 1)
echo "resubmitted index 1 as job $job"
wait_for_job "$job"
"$BIN" merge "$WORK/sharded"

# The merged folder is the unsharded run's: every file (the command line, which names its
# own --out, the shards' records and the locks aside).
diff -r -x command.json -x shards -x '.lock*' "$WORK/whole" "$WORK/sharded"
echo "slurm test passed: 4 shards (one cancelled and resubmitted) merge to the unsharded run, file for file"
