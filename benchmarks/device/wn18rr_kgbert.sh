#!/usr/bin/env bash
# Issue-4 (b) run on one GPU: MiniLM KG-BERT on the whole WN18RR training set, 5 epochs, then a fixed
# random sample of 300 test triples ranked in both directions against all 40,943 entities.
#   bash benchmarks/device/wn18rr_kgbert.sh none      # no auxiliary task
#   bash benchmarks/device/wn18rr_kgbert.sh glosses   # reconstruction over the entity glosses
# Needs .carry/ from `python benchmarks/device/pack.py train`; writes metrics under $OUT.
set -euo pipefail
source benchmarks/device/remote_setup.sh
context=${1:-none}
epochs=${EPOCHS:-5}
run=/tmp/wn18rr_kgbert_$context
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 examples/train_kgbert.py \
  --kg_path "$HF_CTXDISTILL_SHARED_DATA/WN18RR/kgbert_format" --output_dir "$run" \
  --context_source "$context" --num_train_epochs "$epochs" \
  --per_device_train_batch_size "${BATCH:-256}" --learning_rate "${LR:-1e-4}" --warmup_steps 0.1 --weight_decay 0.01 \
  --bf16 --tf32 true --dataloader_num_workers 6 --logging_steps 50 --save_strategy no --seed 42 \
  --num_test_triples "${TEST_TRIPLES:-300}" --eval_batch_size 16384 --disable_tqdm true ${EXTRA:-} 2>&1 \
  | grep -v -E "Warning|warn\(" | tee "${OUT:-/tmp}/train_$context.log"
cp "$run/metrics.json" "${OUT:-/tmp}/metrics_$context.json"
