#!/usr/bin/env bash
# Context generation on one GPU with the offline SmolLM2. Needs both GGUF halves, sent in two calls in
# quick succession: `pack.py llm --part 1`, then `pack.py llm --part 2 --kg WN18RR/kgbert_format`.
#   bash benchmarks/device/generation.sh wn18rr   # contexts for every WN18RR training triple (resumable)
#   bash benchmarks/device/generation.sh bench    # tokens/s of several settings vs one prompt at a time
#   bash benchmarks/device/generation.sh export   # the corpus (parquet + card) in <=15 MiB parts under $OUT
# WN18RR_TIMEOUT stops the corpus run early (a rerun resumes from the cache in /tmp/wn18rr_cache).
set -uo pipefail
source benchmarks/device/remote_setup.sh
KG=$HF_CTXDISTILL_SHARED_DATA/WN18RR/kgbert_format
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
quiet() { grep -v -E "Converting and de-quantizing|Loading weights|Warning|warn\(" ; }
case ${1:-bench} in
wn18rr)
  TQDM_MININTERVAL=30 timeout "${WN18RR_TIMEOUT:-540}" python3 examples/generate_contexts.py --kg "$KG" \
    --model "$HF_CTXDISTILL_SMOLLM2_GGUF" --max_new_tokens 160 --temperature 0.7 --batch_size "${BATCH:-2048}" \
    ${DECODING_FLAGS:---decoding static --compile true} \
    --cache_dir /tmp/wn18rr_cache --output_dir /tmp/wn18rr_contexts --hub_dir /tmp/wn18rr_contexts_hub 2>&1 | quiet | tr '\r' '\n' | tail -40
  ;;
bench)
  SETTINGS=${SETTINGS:-"static_graph_b2048|--decoding static --compile --batch-size 2048 --num-prompts 8192
static_graph_b4096|--decoding static --compile --batch-size 4096 --num-prompts 8192
static_eager_b2048|--decoding static --batch-size 2048 --num-prompts 8192
generate_static_b2048|--static-cache --batch-size 2048 --num-prompts 4096"}
  while IFS='|' read -r name flags; do
    [ -z "$name" ] && continue
    echo "=== $name"
    timeout "${BENCH_TIMEOUT:-240}" python3 benchmarks/bench_generation.py --model "$HF_CTXDISTILL_SMOLLM2_GGUF" --device cuda \
      --kg "$KG" --max-new-tokens 160 --sequential-prompts 1 $flags --json "$OUT/gen_$name.json" 2>&1 | quiet | head -4
  done <<< "$SETTINGS"
  ;;
export)
  tar -C /tmp -cf - wn18rr_contexts_hub | split -b 15M - "$OUT/wn18rr_contexts_hub.tar.part"
  ls -la "$OUT"
  ;;
esac
