#!/usr/bin/env bash
# Wheels of what rlsft needs beyond the GPU machine's image (which has torch, transformers, pytest, numpy, h5py,
# tensorboard, matplotlib, ...), for its Python 3.12, into .whl/ (ignored by git): carried to that machine by the
# device tool (carry: [".whl"]), where `benchmarks/cuda_checks.sh` installs them. Run from the repository root.
set -euo pipefail
grep -qx '/.whl/' .git/info/exclude || echo /.whl/ >> .git/info/exclude
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform manylinux_2_24_x86_64)
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${PLATFORMS[@]}" -d .whl \
  torchrl==0.14.1 tensordict==0.14.3 pyvers hoptorch orjson gymnasium==1.4.0 farama-notifications mujoco==4.0.0 \
  mujoco-core mujoco-studio glfw pyopengl minari==0.5.4 hydra-core==1.3.8 omegaconf==2.3.1 math-verify \
  latex2sympy2_extended
# hydra's parser runtime has no wheel (pure Python; installed there from its source without a build index)
python3 -m pip download --quiet --no-deps --no-binary=:all: -d .whl antlr4-python3-runtime==4.9.3
du -sh .whl
