#!/usr/bin/env bash
# Builds the browser visualizer into target/site, with the plain wasm tool
# chain (no bundler):
#   1. cargo build -p pmem-web for wasm32-unknown-unknown, profile
#      wasm-release (Cargo.toml);
#   2. wasm-bindgen --target web: the ES module pmem_web.js and its
#      pmem_web_bg.wasm;
#   3. wasm-opt -Os on the wasm (smaller gzipped than -Oz here, and faster);
#   4. the static assets (static/), every file named with a hash of its
#      content (so `pmemlab serve` may let browsers cache it for good), and
#      index.html from static/index.html pointing at those names;
#   5. a gzip (.gz) and a brotli (.br) copy of every text and wasm file,
#      which `pmemlab serve` sends to browsers that accept them.
# The tools come from scripts/ensure-web-tools.sh (installed when missing).
# The site is built in target/site.new and then swapped in whole; when
# nothing changed since the last build, it is kept (target/site.key).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/ensure-web-tools.sh
eval "$(./scripts/ensure-web-tools.sh --path)"

target_dir=${CARGO_TARGET_DIR:-target}
site=target/site
stage=target/site.new

echo "== cargo build -p pmem-web (wasm32, profile wasm-release)"
cargo build -q -p pmem-web --bin pmem-web --target wasm32-unknown-unknown --profile wasm-release
raw="$target_dir/wasm32-unknown-unknown/wasm-release/pmem-web.wasm"
# Nothing changed since the last build (the wasm, the assets, this script,
# the tools): keep the site.
key=$( (cat "$raw" scripts/build-web.sh $(find static -type f | sort); wasm-bindgen --version; wasm-opt --version) | sha256sum | cut -c1-64)
if [ -f "$site/index.html" ] && [ "$(cat target/site.key 2>/dev/null)" = "$key" ]; then
  echo "$site is up to date"
  exit 0
fi

rm -rf "$stage"
mkdir -p "$stage"
wasm-bindgen --target web --no-typescript --out-dir "$stage" --out-name pmem_web "$raw"
wasm-opt -Os "$stage/pmem_web_bg.wasm" -o "$stage/pmem_web_bg.wasm"

# Renames FILE in the stage to NAME-HASH.EXT (16 hex digits of its SHA-256)
# and prints the new name.
fingerprint() {
  local file=$1 stem ext hash
  stem=${file%.*}
  ext=${file##*.}
  hash=$(sha256sum "$stage/$file" | cut -c1-16)
  mv "$stage/$file" "$stage/$stem-$hash.$ext"
  echo "$stem-$hash.$ext"
}
cp static/style.css static/icon.svg static/bench.html "$stage/"
wasm=$(fingerprint pmem_web_bg.wasm)
js=$(fingerprint pmem_web.js)
css=$(fingerprint style.css)
icon=$(fingerprint icon.svg)
# static/index.html names the unhashed files; point it at the hashed ones.
sed -e "s|\./pmem_web_bg\.wasm|./$wasm|g" -e "s|\./pmem_web\.js|./$js|g" \
  -e "s|\./style\.css|./$css|g" -e "s|\./icon\.svg|./$icon|g" static/index.html >"$stage/index.html"
for name in "$wasm" "$js" "$css" "$icon"; do
  grep -q "\./$name" "$stage/index.html" || {
    echo "static/index.html does not reference ./${name%%-*}…: keep its asset names as build-web.sh expects" >&2
    exit 1
  }
done

# Precompressed copies: gzip -9, and brotli at quality 11 through Node's
# zlib (Node is already needed for wasm-opt).
files=$(cd "$stage" && find . -type f \( -name '*.wasm' -o -name '*.js' -o -name '*.css' -o -name '*.html' -o -name '*.svg' \) | sort)
for f in $files; do gzip -9 -k -n "$stage/$f"; done
(cd "$stage" && node -e '
const fs = require("fs"), zlib = require("zlib");
for (const f of process.argv.slice(1)) {
  const br = zlib.brotliCompressSync(fs.readFileSync(f), { params: {
    [zlib.constants.BROTLI_PARAM_QUALITY]: 11,
    [zlib.constants.BROTLI_PARAM_SIZE_HINT]: fs.statSync(f).size } });
  fs.writeFileSync(f + ".br", br);
}' $files)

rm -rf "$site"
mv "$stage" "$site"
echo "$key" >target/site.key
echo "built $site: $wasm $(stat -c %s "$site/$wasm") bytes, $(stat -c %s "$site/$wasm.gz") gzipped, $(stat -c %s "$site/$wasm.br") brotli"
