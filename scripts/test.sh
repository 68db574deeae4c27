#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine with the Rust toolchain.
# Installs what the build needs, then: formatting, lints, every test, every rule's examples.
set -euo pipefail
cd "$(dirname "$0")/.."

# With the peer the benchmarks measure (ModSecurity 3, in process), which benches/ tests.
WAF_SETUP_PEER=1
. scripts/setup.sh

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
# Release mode: the differential test runs 10,000 generated requests and the CRS corpus
# through two evaluators; optimised, that takes seconds instead of minutes.
cargo test --workspace --release --locked
echo "== rule examples"
cargo run --release --locked -q -p waf-proxy -- rules test rules/
echo "== load test (smoke)"
# The load test end to end, in one second per request and mode: our proxy with the WAF off,
# with rules/ and with the CRS, nginx, and nginx + ModSecurity + CRS (installed by the script
# when missing); every clean request must pass our ruleset, attacks must be blocked.
bash benches/load/run.sh --smoke
echo "== fuzz (smoke)"
# Every cargo-fuzz target for 20 seconds on its seed corpus (installs cargo-fuzz when
# missing); a crash fails the run. `bash scripts/fuzz.sh --time 600` runs them longer.
bash scripts/fuzz.sh --time 20
