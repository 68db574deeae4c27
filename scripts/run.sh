#!/usr/bin/env bash
# Starts the proxy, from a fresh Debian machine with the Rust toolchain. With no arguments it
# uses the built-in default config: listens on 127.0.0.1:8080, accepts any Host, inspects with
# ./rules and forwards clean requests to 127.0.0.1:8081. Arguments go to `waf serve`
# (for example `--config waf.yaml`; see docs/config.md).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
exec cargo run --release --locked -p waf-proxy -- serve "$@"
