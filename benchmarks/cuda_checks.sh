#!/usr/bin/env bash
# What only a GPU shows (issue 13), as one command for the GPU machine, run from the repository root there
# after `bash benchmarks/device_wheels.sh` here:
#     device run: command="bash benchmarks/cuda_checks.sh", carry=[".whl"], timeout_s=540
# 1. the learner switches on CUDA (bf16 autocast and torch.compile against eager fp32: tests/test_learner.py,
#    which adds its CUDA cases where CUDA is present);
# 2. SAC and the SFT family's loss steps on CUDA through the CLI, a few steps each (they run; finite losses);
# 3. the learner throughput table on CUDA (fp32, bf16, compiled), written to $OUT/learner_throughput_cuda.md.
# Results come back under $OUT (the device tool's); commit the table as benchmarks/results/learner_throughput_cuda.md.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --no-build-isolation --upgrade \
  --target /tmp/site .whl/* || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 MUJOCO_GL=egl RLSFT_DATA=/tmp/rlsft-data
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, torchrl, tensordict; print(torch.__version__, torchrl.__version__, tensordict.__version__)" \
  | tee -a "$OUT/gpu.txt"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_learner.py -k "bf16 or compiled" 2>&1 \
  | tee "$OUT/switches.txt"
SAC=(algorithm=sac algorithm.replay.learning_starts=500)
BC=(algorithm=bc data=rlsft/hopper/medium-replay-s20000-v0 reference.learner.steps=50)  # a small dataset, made here
for run in SAC BC; do
  declare -n settings=$run
  timeout 150 python3 -m rlsft.cli train "${settings[@]}" env=hopper run_dir=/tmp/runs/$run learner.steps=200 \
    learner.device=${DEVICE:-cuda} evaluation.every=0 evaluation.episodes=2 progress=false 2>&1 | tail -4 \
    | tee -a "$OUT/runs.txt"
done
timeout 240 python3 benchmarks/learner_throughput.py --device ${DEVICE:-cuda} --steps 50 --warmup 10 \
  --out "$OUT/learner_throughput_cuda.md" 2>&1 | tail -25
