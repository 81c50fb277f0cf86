#!/usr/bin/env bash
# Short MiniLM KG-BERT runs on WN18RR under several optimisation settings, to pick the full run's:
# each line of SETTINGS is "name|extra flags"; prints each run's loss trend and filtered MRR on a
# fixed sample of test triples. Needs .carry/ (pack.py train).
set -uo pipefail
source benchmarks/device/remote_setup.sh
SETTINGS=${SETTINGS:-"fp32_lr5e-5_b32|--learning_rate 5e-5 --per_device_train_batch_size 32 --max_steps 800
bf16_lr5e-5_b32|--bf16 --learning_rate 5e-5 --per_device_train_batch_size 32 --max_steps 800
bf16_lr2e-5_b256|--bf16 --learning_rate 2e-5 --per_device_train_batch_size 256 --max_steps 400"}
while IFS='|' read -r name flags; do
  [ -z "$name" ] && continue
  echo "=== $name"
  python3 examples/train_kgbert.py --kg_path "$HF_CTXDISTILL_SHARED_DATA/WN18RR/kgbert_format" --output_dir /tmp/sweep_$name \
    --warmup_steps 0.1 --dataloader_num_workers 6 --logging_steps 100 --save_strategy no --seed 42 \
    --num_test_triples ${TEST_TRIPLES:-20} --eval_batch_size 16384 --disable_tqdm true $flags 2>&1 \
    | grep -E "'loss'|filtered|Error|error" | cut -c1-120
done <<< "$SETTINGS"
