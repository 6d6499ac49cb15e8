#!/usr/bin/env bash
# The 1M-step SAC runs beside CleanRL's (issue 15; benchmarks/results/sac_runs/README.md), in the background
# across sessions: two queues, one a core, each run resuming at its last checkpoint.
#
#   benchmarks/sac_1m_runs.sh start ROOT [COMMIT]   start (or resume) the queues, the code exported at COMMIT
#   benchmarks/sac_1m_runs.sh stop ROOT             SIGTERM: each run checkpoints the step it is on, then stops
#   benchmarks/sac_1m_runs.sh queue ROOT ENV:SEED ...  one queue in the foreground (what `start` runs)
#
# ROOT lies outside the checkout (runs, code, logs). The code is exported once (git archive) into ROOT/src at
# COMMIT (default HEAD), and the runs keep it whatever becomes of the checkout (a new one each session);
# `start` after `stop` resumes on the same code. SAC_RUNS_CORES=0 starts the queue of core 0 alone (default
# "0 1"), leaving the other core to other work.
set -euo pipefail
command=${1:?usage: sac_1m_runs.sh start|stop|queue ROOT ...}
root=$(realpath -m "${2:?a folder for the runs, outside the checkout}")
shift 2
source_tree=$root/src
runs="online_returns.py --algorithm sac --runs-root $root/runs"  # what pgrep and pkill find of the runs

case $command in
start)
  cores=${SAC_RUNS_CORES:-0 1}
  if [[ ! "$cores" =~ ^\ *[01](\ +[01])*\ *$ ]]; then
    echo "sac_1m_runs.sh: SAC_RUNS_CORES='$cores' names no queue; use 0, 1 or '0 1'." >&2
    exit 2
  fi
  if pgrep -f "$runs" > /dev/null; then
    echo "sac_1m_runs.sh: runs of $root are running already; stop them first (sac_1m_runs.sh stop $root)." >&2
    exit 2
  fi
  mkdir -p "$root/runs" "$root/scratch"
  export SAC_RUNS_PYTHON=${SAC_RUNS_PYTHON:-$(command -v python)}  # the queues' interpreter: the one starting them
  if [ ! -d "$source_tree" ]; then
    checkout=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)  # git archive from a subfolder exports it alone
    commit=$(git -C "$checkout" rev-parse --verify "${1:-HEAD}^{commit}")
    mkdir "$source_tree"
    git -C "$checkout" archive "$commit" | tar -x -C "$source_tree"
    echo "$commit" > "$source_tree/COMMIT"
  fi
  echo "code: $(cat "$source_tree/COMMIT") in $source_tree; python: $SAC_RUNS_PYTHON"
  for queue in "0 halfcheetah:0 walker2d:0 halfcheetah:1 walker2d:2 hopper:2" \
               "1 hopper:0 hopper:1 walker2d:1 halfcheetah:2"; do
    set -- $queue
    core=$1
    shift
    [[ " $cores " == *" $core "* ]] || continue
    setsid nohup taskset -c "$core" "$source_tree/benchmarks/sac_1m_runs.sh" queue "$root" "$@" \
      >> "$root/queue$core.log" 2>&1 < /dev/null &
    echo "queue on core $core: $* (log $root/queue$core.log)"
  done
  ;;
stop)
  pkill -TERM -f "$runs" || echo "no run of $root was running"
  ;;
queue)
  # One thread a run (the runs measured in benchmarks/results/sac_throughput.md), ROOT/src's rlsft, not the
  # installed checkout's.
  export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=$source_tree
  cd "$source_tree"
  for run in "$@"; do
    env=${run%%:*} seed=${run##*:}
    [ -f "$root/runs/$env-seed$seed/summary.json" ] && continue
    echo "$(date -u +%FT%TZ) $env seed $seed: start"
    status=0
    "${SAC_RUNS_PYTHON:-python}" benchmarks/online_returns.py --algorithm sac --runs-root "$root/runs" \
      --envs "$env" --seeds "$seed" --train --out "$root/scratch/$env-seed$seed.md" \
      --set evaluation.snapshots=true algorithm.evaluation_every=5000 || status=$?
    echo "$(date -u +%FT%TZ) $env seed $seed: ended with status $status"
    [ "$status" -eq 0 ] || exit "$status"  # stopped (143) or a mistake: the queue ends with its run
  done
  ;;
*)
  echo "sac_1m_runs.sh: unknown command '$command'; use start, stop or queue." >&2
  exit 2
  ;;
esac
