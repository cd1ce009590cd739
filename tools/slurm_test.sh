#!/usr/bin/env bash
# Usage: [GPUS=4] [GPUS_PER_NODE=4] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#            bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]
# mmsegmentation 1.2.2's script: srun starts GPUS tasks (GPUS_PER_NODE per node, one GPU each), each running
# this repo's tools/test.py with --launcher slurm. On CPU-only nodes set GPUS_PER_NODE=0 (no --gres; GPUS is
# then the number of tasks) and the tasks use gloo (csd_mm/compat.py).
set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}
NODE_ARGS=(--gres=gpu:"${GPUS_PER_NODE}" --ntasks-per-node="${GPUS_PER_NODE}")
if [ "$GPUS_PER_NODE" = 0 ]; then NODE_ARGS=(); fi

PYTHONPATH="$(dirname "$0")/..":${PYTHONPATH:-} \
srun -p "${PARTITION}" \
    --job-name="${JOB_NAME}" \
    "${NODE_ARGS[@]}" \
    --ntasks="${GPUS}" \
    --cpus-per-task="${CPUS_PER_TASK}" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    "$PYTHON" -u "$(dirname "$0")/test.py" "${CONFIG}" "${CHECKPOINT}" --launcher="slurm" "${@:5}"
