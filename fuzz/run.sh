#!/usr/bin/env bash
# Runs cargo-fuzz targets for a bounded time each, one after another (a single libFuzzer process
# each, no -jobs: the CI machine is small). Usage:
#   fuzz/run.sh SECONDS [TARGET...]        # default: every target in fuzz/fuzz_targets/
# Inputs: the kept corpus fuzz/corpus/<target>/ and the hand-written seeds fuzz/seeds/<target>/,
# both read-only; new inputs go to a scratch folder (FUZZ_WORK, default a temp dir) so a CI
# run leaves the repository as it was. Exits non-zero on the first crash, leak or timeout,
# leaving the reproducer in fuzz/artifacts/<target>/.
# Needs cargo-fuzz (installed here when missing) and nightly features: RUSTC_BOOTSTRAP=1
# lets the stable toolchain build with the sanitizer flags.
set -euo pipefail
# FUZZ_WORK is taken relative to where the script was started, before the cd below.
[ -n "${FUZZ_WORK:-}" ] && FUZZ_WORK=$(mkdir -p "$FUZZ_WORK" && cd "$FUZZ_WORK" && pwd)
cd "$(dirname "$0")"

secs=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

work=${FUZZ_WORK:-$(mktemp -d)}
for t in "${targets[@]}"; do
  mkdir -p "$work/$t" "corpus/$t" "artifacts/$t"
  dirs=("$work/$t" "corpus/$t")
  [ -d "seeds/$t" ] && dirs+=("seeds/$t")
  echo "== building fuzz target $t"
  cargo fuzz build -O "$t"
  echo "== fuzz $t for ${secs}s"
  start=$(date +%s)
  # -rss_limit_mb: the targets cap their own buffers; 2 GB catches runaway allocation.
  cargo fuzz run -O "$t" "${dirs[@]}" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 2>"$work/$t.log" || {
      tail -n 60 "$work/$t.log" >&2
      echo "fuzz target $t failed: reproducer in fuzz/artifacts/$t/" >&2
      exit 1
    }
  end=$(date +%s)
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$t.log" | grep -o '[0-9]*$' || echo '?')
  echo "   $t: $((end - start))s wall, ${execs} executions, no crash"
done
