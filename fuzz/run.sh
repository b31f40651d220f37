#!/usr/bin/env bash
# Builds the fuzz targets (libFuzzer, coverage-guided, as cargo-fuzz builds them) and runs
# each for SECONDS (default 10) from a seed corpus made of the golden files, failing on the
# first crash. Usage: fuzz/run.sh [SECONDS] [TARGET...]
#
# Stable Rust: the sanitizer-coverage passes are unstable flags, so RUSTC_BOOTSTRAP=1.
# To fuzz for long: fuzz/run.sh 3600 form   (or, with cargo-fuzz: cargo fuzz run form)
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-10}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(form event automation url webhook_json receive retry_after secret ip_network stored_delivery)
fi

export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# With --target, RUSTFLAGS reach the targets and not the build scripts (as cargo-fuzz does).
host=$(rustc -vV | sed -n 's/^host: //p')
cargo build --release --quiet --bins --target "$host"
# Where cargo builds (CARGO_TARGET_DIR or a config may move it).
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -d "$target_dir" ] || { echo "cannot find cargo's target directory"; exit 1; }
bin="$target_dir/$host/release"

# Seeds: every golden body for the body parsers; small hand-made ones for the others.
corpus="$target_dir/fuzz-corpus"
seed() { mkdir -p "$corpus/$1"; }
for t in form event automation receive; do
  seed "$t"
  cp ../tests/golden/*.txt "$corpus/$t/" 2>/dev/null || true
done
seed url
printf 'https://hooks.example.com/ac?token=a$b' >"$corpus/url/1"
printf 'http://[::1]:8080/%%zz' >"$corpus/url/2"
printf 'http://2130706433./x' >"$corpus/url/3"
seed webhook_json
printf '{"webhook":{"name":"n","url":"https://example.com/h","events":["subscribe"],"sources":["public"],"listid":"0","headers":{"x-a":"1"}}}' >"$corpus/webhook_json/1"
seed retry_after
printf 'A120' >"$corpus/retry_after/1"
printf 'AWed, 21 Oct 2015 07:28:00 GMT' >"$corpus/retry_after/2"
seed secret
printf 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' >"$corpus/secret/1"
seed ip_network
printf '10.0.0.0/8' >"$corpus/ip_network/1"
printf '2001:db8::/32' >"$corpus/ip_network/2"
seed stored_delivery
printf '{"id":"0000000000000000000000000000002a","webhook_id":"3","policy":{"max_attempts":5,"initial_backoff":{"secs":30,"nanos":0},"multiplier":2,"max_backoff":{"secs":3600,"nanos":0},"jitter_percent":10},"attempts":[{"number":1,"outcome":"lapsed","at":{"secs":1,"nanos":0}}],"outcome":null}' >"$corpus/stored_delivery/1"

for t in "${targets[@]}"; do
  mkdir -p "$corpus/$t"
  echo "== fuzz $t (${seconds}s)"
  "$bin/$t" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=0 \
    -artifact_prefix="$target_dir/fuzz-artifacts-$t-" "$corpus/$t" 2>&1 | tail -n 3
  # libFuzzer exits non-zero on a crash; pipefail passes it on.
done
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no crash"
