#!/usr/bin/env bash
# Issue 6: the same work on NGPU processes (torchrun, one GPU each) and on one GPU.
#  (i)  MiniLM KG-BERT with reconstruction over the entity glosses, examples/train_kgbert.py, STEPS
#       optimizer steps at a global batch of BATCH true triples (BATCH / NGPU per GPU under torchrun):
#       time per step of both runs and their loss curves side by side. Both runs see the same triples,
#       negatives and masks in the same order; the curves still differ a little, since dropout (0.1 in
#       MiniLM) draws other masks per process (tests/training/test_distributed.py checks exact
#       equality with dropout off).
#  (ii) the exact filtered ranking of the whole test split (TEST_TRIPLES=n for a fixed sample) with
#       the one-GPU model: examples/rank_sharded.py on one GPU, then one query shard per GPU under
#       torchrun, merged; the merged ranks are compared with the one-GPU ranks, and the wall-time
#       ratio is printed.
#   bash benchmarks/device/multi_gpu.sh                     # every GPU of the machine, WN18RR
#   NGPU=2 STEPS=200 TEST_TRIPLES=300 bash benchmarks/device/multi_gpu.sh
#   CPU=1 bash benchmarks/device/multi_gpu.sh               # smoke run: 2 CPU processes over gloo, tiny KG
# On the GPU machine needs .carry/ from `python benchmarks/device/pack.py train`; writes logs and
# metrics under $OUT. The full WN18RR ranking is 256.6M pairs: about 47 minutes on one H100.
set -euo pipefail
CPU=${CPU:-0}
if [ "$CPU" = 1 ]; then  # here or anywhere with the package installed
  export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
else
  source benchmarks/device/remote_setup.sh
fi
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/multi_gpu_out}
WORK=${WORK:-/tmp/multi_gpu_work}
rm -rf "$WORK"  # rank files resume by query: never reuse another model's
mkdir -p "$OUT" "$WORK"

if [ "$CPU" = 1 ]; then
  NGPU=${NGPU:-2} STEPS=${STEPS:-6} BATCH=${BATCH:-8} LOG_STEPS=${LOG_STEPS:-1} EVAL_BATCH=${EVAL_BATCH:-128}
  export ACCELERATE_USE_CPU=true OMP_NUM_THREADS=1 CUDA_VISIBLE_DEVICES=""
  device_flags=(--use_cpu true --dataloader_num_workers 0)
  ddp_flags=(--ddp_backend gloo)  # only under torchrun: one process with a backend set looks for a group
  rank_flags=(--cpu)
  REQUIRE_IDENTICAL=${REQUIRE_IDENTICAL-1}  # float32 on the CPU: the shards must give the very same ranks
  if [ -z "${KG:-}" ]; then  # a small KG in the KG-BERT layout, with descriptions (the glosses)
    KG=$WORK/tiny_kg
    $PY - "$KG" <<'EOF'
import random, sys
from pathlib import Path
out = Path(sys.argv[1]); out.mkdir(parents=True)
rng = random.Random(0)
words = "river mountain city country language painter novel planet animal instrument".split()
ents = [f"e{i}" for i in range(60)]
(out / "entity2text.txt").write_text("".join(f"{e}\t{words[i % 10]} {i}\n" for i, e in enumerate(ents)))
(out / "entity2textlong.txt").write_text("".join(f"{e}\ta {words[i % 10]} known as number {i}\n" for i, e in enumerate(ents)))
rels = {"located_in": "located in", "part_of": "part of", "named_after": "named after"}
(out / "relation2text.txt").write_text("".join(f"{k}\t{v}\n" for k, v in rels.items()))
triples = set()
while len(triples) < 240:
    h, t = rng.sample(ents, 2)
    triples.add((h, rng.choice(list(rels)), t))
triples = sorted(triples); rng.shuffle(triples)
for name, rows in (("train.tsv", triples[:200]), ("dev.tsv", triples[200:220]), ("test.tsv", triples[220:])):
    (out / name).write_text("".join("\t".join(r) + "\n" for r in rows))
EOF
  fi
else
  NGPU=${NGPU:-$(nvidia-smi -L | wc -l)} STEPS=${STEPS:-300} BATCH=${BATCH:-256} LOG_STEPS=${LOG_STEPS:-25}
  EVAL_BATCH=${EVAL_BATCH:-16384}
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  device_flags=(--bf16 --tf32 true --dataloader_num_workers 6)
  ddp_flags=()
  rank_flags=(--bf16)
fi
KG=${KG:-$HF_CTXDISTILL_SHARED_DATA/WN18RR/kgbert_format}
if (( NGPU < 2 || BATCH % NGPU != 0 )); then
  echo "need NGPU >= 2 dividing BATCH (NGPU=$NGPU, BATCH=$BATCH)" >&2
  exit 1
fi
torchrun=($PY -m torch.distributed.run --standalone --nproc_per_node="$NGPU")
one=(env)
[ "$CPU" = 1 ] || one=(env CUDA_VISIBLE_DEVICES=0)  # one process on one GPU (all visible would mean DataParallel)
echo "NGPU=$NGPU CPU=$CPU STEPS=$STEPS BATCH=$BATCH KG=$KG"

# ------------------------------------------------------------------ (i) training
train=(examples/train_kgbert.py --kg_path "$KG" --context_source glosses --max_steps "$STEPS"
  --learning_rate "${LR:-1e-4}" --warmup_steps 0.1 --weight_decay 0.01 --logging_steps "$LOG_STEPS"
  --save_strategy no --seed 42 --num_test_queries 1 --eval_batch_size "$EVAL_BATCH" --disable_tqdm true
  "${device_flags[@]}")
"${one[@]}" $PY "${train[@]}" --output_dir "$WORK/train_1" --per_device_train_batch_size "$BATCH" 2>&1 \
  | grep -v -E "Warning|warn\(" | tee "$OUT/train_1.log"
"${torchrun[@]}" "${train[@]}" --output_dir "$WORK/train_$NGPU" --per_device_train_batch_size $((BATCH / NGPU)) \
  --ddp_find_unused_parameters false "${ddp_flags[@]}" 2>&1 | grep -v -E "Warning|warn\(" | tee "$OUT/train_$NGPU.log"
$PY - "$OUT/train_1.log" "$OUT/train_$NGPU.log" "$NGPU" "$LOG_STEPS" "$STEPS" <<'EOF' | tee "$OUT/train_side_by_side.txt"
import ast, sys
def read(path):
    losses, summary = [], {}
    for line in open(path):
        line = line.strip()
        if line.startswith("{'"):
            entry = {k: float(v) for k, v in ast.literal_eval(line).items()}
            (losses.append(entry) if "loss" in entry else summary.update(entry))
    return losses, summary
(l1, s1), (ln, sn) = read(sys.argv[1]), read(sys.argv[2])
n, every, steps = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
print(f"{'step':>6} {'loss 1':>9} {f'loss {n}':>9} {'recon 1':>9} {f'recon {n}':>9}")
for i, (a, b) in enumerate(zip(l1, ln)):
    print(f"{(i + 1) * every:>6} {a['loss']:>9.4f} {b['loss']:>9.4f} {a.get('reconstruction_loss', float('nan')):>9.4f} {b.get('reconstruction_loss', float('nan')):>9.4f}")
t1, tn = s1["train_runtime"] / steps, sn["train_runtime"] / steps
print(f"time per step (whole run incl. start-up): 1 process {t1:.3f} s, {n} processes {tn:.3f} s, ratio {t1 / tn:.2f}x")
EOF

# ------------------------------------------------------------------ (ii) sharded ranking
rank=(examples/rank_sharded.py --model_dir "$WORK/train_1" --kg_path "$KG" --eval_batch_size "$EVAL_BATCH"
  --seed 42 ${TEST_TRIPLES:+--num_test_triples "$TEST_TRIPLES"} "${rank_flags[@]}")
"${one[@]}" $PY "${rank[@]}" --output_dir "$WORK/ranks_1" 2>&1 | grep -v -E "Warning|warn\(" | tee "$OUT/rank_1.log"
"${torchrun[@]}" "${rank[@]}" --output_dir "$WORK/ranks_$NGPU" --reference "$WORK/ranks_1" ${REQUIRE_IDENTICAL:+--require_identical} 2>&1 \
  | grep -v -E "Warning|warn\(" | tee "$OUT/rank_$NGPU.log"
cp "$WORK/ranks_1/metrics.json" "$OUT/rank_metrics_1.json"
cp "$WORK/ranks_$NGPU/metrics.json" "$OUT/rank_metrics_$NGPU.json"
