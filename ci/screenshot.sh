#!/usr/bin/env bash
# Renders a report and opens it in headless Chromium (Debian's chromium, no network): checks that
# it renders (the DOM has the scale line and the results table), that the console is free of
# errors (CSP violations, broken images, script errors all log there), and takes a screenshot.
# usage: ci/screenshot.sh [RESULTS_DIR] [OUT_DIR]
#   RESULTS_DIR holds results.json (default: a copy of tests/fixtures/reports/linear-probe-smoke)
#   OUT_DIR gets report-screenshot.png and chromium.log (default: build/screenshot)
# Installs chromium with apt-get when missing (root only); never part of `make test`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
igpt=${IGPT_BIN:-$root/build/igpt}
out=${2:-$root/build/screenshot}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "screenshot: installing chromium (apt-get)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) \
      >/tmp/igpt-apt-chromium.log 2>&1 || { echo "screenshot: apt-get failed, see /tmp/igpt-apt-chromium.log" >&2; exit 1; }
  else
    echo "screenshot: chromium missing; run: sudo apt-get install -y chromium" >&2; exit 1
  fi
fi
[ -x "$igpt" ] || { echo "screenshot: $igpt not built; run make" >&2; exit 1; }

work=$(mktemp -d)
profile=$(mktemp -d)
trap 'rm -rf "$work" "$profile"' EXIT
if [ -n "${1:-}" ]; then
  dir=$(cd "$1" && pwd)
else
  dir=$work/results
  cp -r "$root/tests/fixtures/reports/linear-probe-smoke" "$dir"
  # real pictures: samples and completions from the HF oracle model (8x8, 16 colours)
  oracle=$root/../shared/oracles/hf-imagegpt-tiny
  if [ -d "$oracle" ]; then
    "$igpt" import --from hf "$oracle" --out "$work/model.safetensors" >/dev/null
    /usr/bin/python3 - "$oracle" "$work" <<'PY'
import json, struct, sys
import numpy as np
oracle, work = sys.argv[1:]
b = open(f"{oracle}/quantize.safetensors", "rb").read()
n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); e = h["clusters"]
cl = np.frombuffer(b[8 + n + e["data_offsets"][0]:8 + n + e["data_offsets"][1]], np.float32)
yy, xx = np.mgrid[0:8, 0:8]
img = np.stack([np.stack([(yy * 32 + 40 * i) % 256, xx * 32, np.full((8, 8), 96 + 40 * i)], -1) for i in range(3)]).astype(np.uint8)
def write(path, name, dt, a):
    raw = a.tobytes(); j = json.dumps({name: {"dtype": dt, "shape": list(a.shape), "data_offsets": [0, len(raw)]}}).encode()
    j += b" " * ((8 - len(j) % 8) % 8); open(path, "wb").write(struct.pack("<Q", len(j)) + j + raw)
write(f"{work}/palette.safetensors", "clusters", "F32", cl.reshape(16, 3))
write(f"{work}/images.safetensors", "images", "U8", img)
PY
    "$igpt" sample --model "$work/model.safetensors" --palette "$work/palette.safetensors" --n 16 \
      --seed 1 --out "$dir/samples.png" 2>/dev/null
    "$igpt" sample --model "$work/model.safetensors" --palette "$work/palette.safetensors" --n 4 \
      --complete "$work/images.safetensors" --rows 3 --seed 1 --out "$dir/completions.png" 2>/dev/null
    /usr/bin/python3 - "$dir/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r["images"] = [
  {"kind": "samples", "path": "samples.png", "title": "Unconditional samples", "model": "hf-imagegpt-tiny (random weights)",
   "caption": "16 samples, temperature 1, seed 1"},
  {"kind": "completions", "path": "completions.png", "title": "Half-image completions", "model": "hf-imagegpt-tiny (random weights)",
   "caption": "each row: original, given top half, 4 completions"}]
json.dump(r, open(sys.argv[1], "w"), indent=1)
PY
  fi
fi
"$igpt" report --results "$dir"
html=$dir/report.html

flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
       --disable-background-networking --disable-component-update --disable-sync
       --user-data-dir="$profile" --enable-logging=stderr --v=0 --hide-scrollbars)
log=$out/chromium.log
console_errors() {  # lines of a chromium log that come from the page or a blocked load
  grep -E 'CONSOLE|Refused to|Failed to load|ERR_' "$1" | grep -v -E 'dbus|Fontconfig' || true
}
# 0. the detector itself: a page that logs an error must be caught, else this check proves nothing
printf '<!DOCTYPE html><body><script>console.error("igpt-probe")</script></body>' >"$work/bad.html"
timeout 120 chromium "${flags[@]}" --dump-dom "file://$work/bad.html" >/dev/null 2>"$work/bad.log" || true
console_errors "$work/bad.log" | grep -q igpt-probe || {
  echo "screenshot: chromium's console log does not show page errors; cannot check the report" >&2; exit 1; }
# 1. the DOM after load: proves it parsed and rendered the parts that matter
timeout 120 chromium "${flags[@]}" --dump-dom "file://$html" >"$work/dom.html" 2>"$log" || {
  echo "screenshot: chromium --dump-dom failed, see $log" >&2; exit 1; }
for want in 'Scale: ' 'class="results"'; do
  grep -q "$want" "$work/dom.html" || { echo "screenshot: rendered DOM lacks '$want'" >&2; exit 1; }
done
# 2. the screenshot, tall enough for the whole page
timeout 120 chromium "${flags[@]}" --window-size=1280,${SCREENSHOT_HEIGHT:-2600} \
  --screenshot="$out/report-screenshot.png" "file://$html" >>"$log" 2>&1 || {
  echo "screenshot: chromium --screenshot failed, see $log" >&2; exit 1; }
[ -s "$out/report-screenshot.png" ] || { echo "screenshot: no PNG written" >&2; exit 1; }
# 3. the console: any message from the page (CONSOLE lines) or a blocked load is an error
console_errors "$log" >"$work/errors"
if [ -s "$work/errors" ]; then
  echo "screenshot: the page logged errors:" >&2; cat "$work/errors" >&2; exit 1
fi
echo "screenshot: $html rendered, console clean; screenshot in $out/report-screenshot.png"
