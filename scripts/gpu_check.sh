#!/usr/bin/env bash
# The GPU pod check (a few minutes on one H100-class GPU). Run from the repository root:
#
#   bash scripts/gpu_check.sh [OUTPUT_DIR]        # default gpu_check_output/
#
# 1. installs (bootstrap reuses the image's CUDA torch where there is one) and runs the tests marked gpu;
# 2. writes a model folder with random weights of Gemma-2-2B's shape (bfloat16, about 5 GB; the
#    tokenizer is the embedded Gemma-3 one, so the vocabulary is 262,144 instead of 256,000);
# 3. `deception bench` (bare generate vs capture at batch 1, 16, 64) and `deception bench --pipeline`;
# 4. a slice of the guide's full experiment (6 scenarios x 2 modes x 2 conditions x 5 trials x
#    3 rounds, 128 tokens, --batch-size auto), timed; the full 50 trials is ten such slices;
# 5. where vLLM is installed: the same slice with --engine openai against `vllm serve` on the same GPU
#    (half its memory each), timed beside step 4, and `deception bench --pipeline --engine openai`.
# Every figure lands in OUTPUT_DIR (tables as .txt, rows as .json).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu_check_output}
mkdir -p "$out"
bash scripts/bootstrap.sh --dev
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv | tee "$out/gpus.csv"
.venv/bin/python -m pytest -q -m gpu 2>&1 | tee "$out/gpu_tests.txt"

model="$out/gemma2-2b-shape"
if [[ ! -f $model/config.json ]]; then
  .venv/bin/python - "$model" <<'PY'
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Gemma2Config

from deception_core.model.embedded import ensure_converted
from deception_core.model.spec import EMBEDDED_MODELS

target = sys.argv[1]
tokenizer = AutoTokenizer.from_pretrained(str(ensure_converted(EMBEDDED_MODELS["gemma-3-270m"])))
config = Gemma2Config(vocab_size=len(tokenizer), hidden_size=2304, intermediate_size=9216, num_hidden_layers=26,
                      num_attention_heads=8, num_key_value_heads=4, head_dim=256, sliding_window=4096,
                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id)
torch.manual_seed(0)
with torch.device("cuda"):
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
model.save_pretrained(target)
tokenizer.save_pretrained(target)
print(f"wrote {target}: {sum(p.numel() for p in model.parameters()) / 1e9:.2f} B parameters")
PY
fi

.venv/bin/deception bench --model "$model" --dtype bfloat16 --batch-sizes 1,16,64 --backends "" --new-tokens 64 \
  --repeats 3 --json "$out/bench.json" | tee "$out/bench.txt"
.venv/bin/deception bench --pipeline --model "$model" --dtype bfloat16 --batch-sizes 1,4,16 --trials 4 \
  --new-tokens 64 --json "$out/pipeline.json" | tee "$out/pipeline.txt"
start=$(date +%s)
.venv/bin/deception run --model "$model" --dtype bfloat16 --scenarios 6 --mode both --trials 5 --max-rounds 3 \
  --max-tokens 128 --label-policy rule --no-analyze --output "$out/guide_slice" 2>&1 | tail -5 | tee "$out/guide_slice.txt"
seconds=$(( $(date +%s) - start ))
echo "guide slice (5 of 50 trials per condition): ${seconds} s; the full experiment, extrapolated: $(( seconds * 10 )) s" \
  | tee -a "$out/guide_slice.txt"

# 5. --engine hf against --engine openai (vLLM beside the capture model on this GPU), where vLLM is installed
if .venv/bin/python -c "import vllm" 2>/dev/null; then
  port=8011
  .venv/bin/python -m vllm.entrypoints.openai.api_server --model "$model" --dtype bfloat16 --port "$port" \
    --gpu-memory-utilization 0.45 --seed 0 > "$out/vllm_serve.log" 2>&1 &
  vllm_pid=$!
  trap 'kill $vllm_pid 2>/dev/null || true' EXIT
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
    sleep 1
  done
  engine=(--engine openai --engine-url "http://127.0.0.1:$port")
  start=$(date +%s)
  .venv/bin/deception run --model "$model" --dtype bfloat16 --scenarios 6 --mode both --trials 5 --max-rounds 3 \
    --max-tokens 128 --label-policy rule --no-analyze "${engine[@]}" --output "$out/guide_slice_openai" 2>&1 \
    | tail -6 | tee "$out/guide_slice_openai.txt"
  engine_seconds=$(( $(date +%s) - start ))
  echo "guide slice, --engine openai (vLLM): ${engine_seconds} s against --engine hf: ${seconds} s" \
    | tee -a "$out/guide_slice_openai.txt"
  .venv/bin/deception bench --pipeline --model "$model" --dtype bfloat16 --batch-sizes 1,4,16 --trials 4 \
    --new-tokens 64 "${engine[@]}" --json "$out/pipeline_openai.json" | tee "$out/pipeline_openai.txt"
else
  echo "vLLM is not installed: --engine openai was not timed (pip install vllm, then re-run)" | tee "$out/engine.txt"
fi
