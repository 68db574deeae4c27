#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine with the Rust toolchain.
# Installs what the build needs, then: formatting, lints, every test, every rule's examples.
set -euo pipefail
cd "$(dirname "$0")/.."

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
