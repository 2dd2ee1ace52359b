#!/usr/bin/env bash
# Issue 19's recipe arms: equal wall-clock from scratch, MNIST T = 64 with attention, one torch thread.
# Each arm differs from "base" (constant Adam 1e-3, batch 64, PyTorch's initialisation) in one thing.
# Re-running the script resumes an interrupted arm and skips finished ones (time_to_quality checkpoints).
set -u
cd "$(dirname "$0")/../.."
MIN=${ARM_MINUTES:-22}
arm() {
  label=$1; shift
  if [ -f "benchmarks/arms/$label.json" ] && grep -q '"finished"' "benchmarks/arms/$label.json"; then return; fi
  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/time_to_quality.py --out benchmarks/arms --label "$label" \
    --recipe constant --minutes "$MIN" --eval-every-minutes 5.5 --test-limit 2000 --fast --threads 1 \
    --no-progress "$@"
}
arm base
arm init-anchor --init anchor
arm lr-2e-3 --lr 2e-3
arm lr-3e-4 --lr 3e-4
arm batch-128 --batch-size 128
arm batch-32 --batch-size 32
arm warmup-500 --warmup 500
