# Source on the GPU machine from the repo root: installs the carried wheels, stores a carried GGUF
# half under /tmp/llm and joins the halves once both arrived (checking the sha256), and points the
# library at the carried models and data.
for wheels in .carry/whl .carry_llm1/whl; do
  [ -d $wheels ] && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $wheels/*.whl
done
export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
[ -d .carry/minilm ] && export HF_CTXDISTILL_MINILM_PATH=$PWD/.carry/minilm
[ -d .carry/data ] && export HF_CTXDISTILL_SHARED_DATA=$PWD/.carry/data
# KG files that came with an LLM half are kept under /tmp, which outlives the carried folders.
[ -d .carry_llm2/data ] && mkdir -p /tmp/kgdata && cp -r .carry_llm2/data/. /tmp/kgdata/
[ -z "${HF_CTXDISTILL_SHARED_DATA:-}" ] && [ -d /tmp/kgdata ] && export HF_CTXDISTILL_SHARED_DATA=/tmp/kgdata
mkdir -p /tmp/llm
for part in .carry_llm1 .carry_llm2; do
  [ -d $part ] && cp $part/*.part* $part/manifest.json /tmp/llm/
done
if [ -f /tmp/llm/manifest.json ]; then
  name=$(python3 -c "import json;print(json.load(open('/tmp/llm/manifest.json'))['name'])")
  if [ -f /tmp/llm/$name.part1 ] && [ -f /tmp/llm/$name.part2 ] && [ ! -f /tmp/llm/$name ]; then
    cat /tmp/llm/$name.part1 /tmp/llm/$name.part2 > /tmp/llm/$name
  fi
  if [ -f /tmp/llm/$name ] && python3 -c "import hashlib,json;m=json.load(open('/tmp/llm/manifest.json'));assert hashlib.sha256(open('/tmp/llm/'+m['name'],'rb').read()).hexdigest()==m['sha256']"; then
    export HF_CTXDISTILL_SMOLLM2_GGUF=/tmp/llm/$name
  fi
fi
