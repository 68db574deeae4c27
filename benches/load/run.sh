#!/usr/bin/env bash
# Load test of `waf serve` on loopback: requests/s with the WAF on vs off, for the authorize GET
# and the ~1 KB login POST of the criterion benchmarks (benches/src/lib.rs), through the proxy to
# an nginx origin that answers "ok". Prints one markdown table of medians over interleaved
# rounds. See benches/load/README.md.
#
#   bash benches/load/run.sh [--waf PATH] [--duration 10s] [--connections 32] [--threads 1]
#                            [--proxy-threads 1] [--rounds 3] [--warmup 2s] [--out FILE]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

usage() {
    cat <<'EOF'
usage: bash benches/load/run.sh [options]

  --waf PATH           the waf binary (default: target/release/waf, built if missing)
  --duration D         wrk duration of each measured run (default 10s)
  --connections N      wrk connections (default 32)
  --threads N          wrk threads (default 1)
  --proxy-threads N    the proxy's `threads` (default 1)
  --rounds N           interleaved rounds; the table shows medians (default 3)
  --warmup D           an unmeasured wrk run per request and mode first (default 2s, 0 = none)
  --out FILE           also write the table to FILE
EOF
}

die() {
    printf 'run.sh: error: %s\n' "$*" >&2
    exit 1
}

# --- Arguments -----------------------------------------------------------------------------
waf=""
duration="10s"
connections=32
threads=1
proxy_threads=1
rounds=3
warmup="2s"
out=""
while (($#)); do
    # Every option takes a value; say which one is missing rather than "unbound variable".
    case "$1" in
    -h | --help)
        usage
        exit 0
        ;;
    --waf | --duration | --connections | --threads | --proxy-threads | --rounds | --warmup | --out)
        (($# >= 2)) || die "$1 needs a value"
        ;;
    *)
        usage >&2
        die "unknown argument: $1"
        ;;
    esac
    case "$1" in
    --waf) waf="$2" ;;
    --duration) duration="$2" ;;
    --connections) connections="$2" ;;
    --threads) threads="$2" ;;
    --proxy-threads) proxy_threads="$2" ;;
    --rounds) rounds="$2" ;;
    --warmup) warmup="$2" ;;
    --out) out="$2" ;;
    esac
    shift 2
done
for v in connections threads proxy_threads rounds; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "--${v//_/-} must be a positive integer, got '${!v}'"
done
[[ "$duration" =~ ^[0-9]+[smh]?$ ]] || die "--duration must look like 10s, got '$duration'"
[[ "$warmup" =~ ^[0-9]+[smh]?$ ]] || die "--warmup must look like 2s, got '$warmup'"

# --- Tools: wrk, nginx and curl from Debian's packages, installed only when missing ----------
as_root() {
    # We run as root in CI; elsewhere apt-get needs sudo.
    if [[ "$(id -u)" -eq 0 ]]; then "$@"; else sudo "$@"; fi
}
find_nginx() {
    # nginx lives in /usr/sbin, which is not on a normal user's PATH.
    command -v nginx 2>/dev/null || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true
}
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v curl >/dev/null 2>&1 || missing+=(curl)
[[ -n "$(find_nginx)" ]] || missing+=(nginx)
if ((${#missing[@]})); then
    echo "run.sh: installing ${missing[*]}" >&2
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
nginx_bin="$(find_nginx)"
[[ -n "$nginx_bin" ]] || die "nginx is not installed"

# --- The proxy binary: the one given, else the release build (built when missing or too old
# to have `serve`) -------------------------------------------------------------------------
if [[ -z "$waf" ]]; then
    waf="$repo/target/release/waf"
    if [[ ! -x "$waf" ]] || ! "$waf" serve --help >/dev/null 2>&1; then
        echo "run.sh: building $waf" >&2
        (cd "$repo" && cargo build --release --locked -p waf-proxy)
    fi
fi
[[ -x "$waf" ]] || die "no executable waf binary at $waf"
"$waf" serve --help >/dev/null 2>&1 ||
    die "$waf has no 'serve' subcommand (an old build?); rebuild it with: cargo build --release --locked -p waf-proxy"

# --- Temp dir and cleanup: every process we start is recorded in pids and stopped on exit ----
tmp="$(mktemp -d "${TMPDIR:-/tmp}/waf-load.XXXXXX")"
# nginx's workers run as nobody when we are root; let them reach their temp paths in here.
chmod 755 "$tmp"
pids=()
nginx_pid=""
wrk_pid=""
cleanup() {
    local pid i alive
    [[ -z "$wrk_pid" ]] || pids+=("$wrk_pid")
    # nginx's workers are children of its master, not ours: stop them too if the master is
    # killed before it could.
    if [[ -n "$nginx_pid" ]]; then
        for pid in $(ps -o pid= --ppid "$nginx_pid" 2>/dev/null || true); do pids+=("$pid"); done
    fi
    if ((${#pids[@]})); then
        # SIGINT: fast shutdown for both Pingora (SIGTERM would wait out its grace period) and
        # nginx. Then give them 5 s before SIGKILL.
        for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
        for ((i = 0; i < 50; i++)); do
            alive=0
            for pid in "${pids[@]}"; do
                if kill -0 "$pid" 2>/dev/null; then alive=1; fi
            done
            ((alive)) || break
            sleep 0.1
        done
        for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
        wait 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Free ports on 127.0.0.1: random, below the ephemeral range (so no outgoing connection of
# wrk or the proxy can take them), and not already listening ---------------------------------
listening() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
chosen=" "
free_port() {
    # Sets REPLY (a $(...) subshell would lose the record of the ports already chosen).
    local p
    while :; do
        p=$((10000 + RANDOM % 22000))
        [[ "$chosen" == *" $p "* ]] && continue
        listening "$p" && continue
        chosen+="$p "
        REPLY="$p"
        return
    done
}

show_log() {
    # The tail of a log, for an error message.
    echo "---- last lines of $1 ----" >&2
    tail -n 40 "$1" >&2 || true
    echo "----" >&2
}

wait_listening() {
    # Waits until a process we started listens on its port, up to 60 s (rules compile before
    # the proxy listens); fails at once if the process exits.
    local name="$1" pid="$2" port="$3" log="$4" i
    for ((i = 0; i < 600; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            show_log "$log"
            die "$name exited before listening on 127.0.0.1:$port"
        fi
        if listening "$port"; then return 0; fi
        sleep 0.1
    done
    show_log "$log"
    die "$name did not listen on 127.0.0.1:$port within 60 s"
}

# --- The origin: nginx, one worker, "ok" to every request, keep-alive on, bodies accepted ----
free_port
nginx_port="$REPLY"
mkdir -p "$tmp/nginx"
user_line=""
if [[ "$(id -u)" -eq 0 ]]; then
    # As root nginx needs a user for its workers; Debian's default one (www-data) comes from its
    # own nginx.conf, which we do not use.
    if getent group nogroup >/dev/null; then user_line="user nobody nogroup;"; else user_line="user nobody;"; fi
fi
cat >"$tmp/nginx/nginx.conf" <<EOF
# Written by benches/load/run.sh: the fastest origin we can have, answering "ok" to anything.
$user_line
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    # One connection per proxy connection for the whole run.
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    # The login POST's 1 KB body (and larger) is read in memory, never refused.
    client_body_buffer_size 64k;
    client_max_body_size 1m;
    client_body_temp_path $tmp/nginx/client_body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    server {
        listen 127.0.0.1:$nginx_port;
        location / {
            return 200 "ok";
        }
    }
}
EOF
# -e: the error log before the config is read (the default one is in /var/log/nginx).
"$nginx_bin" -p "$tmp/nginx/" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" \
    >"$tmp/nginx/stdout.log" 2>&1 &
nginx_pid=$!
pids+=("$nginx_pid")
wait_listening nginx "$nginx_pid" "$nginx_port" "$tmp/nginx/error.log"

# --- The two proxies, started once and measured alternately: same binary, same config but
# the rules ---------------------------------------------------------------------------------
declare -A proxy_port proxy_pid proxy_log
write_config() {
    # $1 = mode (waf-off | waf-on), $2 = listen port, $3 = admin port.
    local rules="[]"
    [[ "$1" == "waf-on" ]] && rules="[\"$repo/rules\"]"
    cat <<EOF
# Written by benches/load/run.sh ($1).
listen: "127.0.0.1:$2"
# Not served yet, but must not clash between the two proxies once it is.
admin: "127.0.0.1:$3"
threads: $proxy_threads
sites:
  - hosts: ["*"]
    upstream:
      address: "127.0.0.1:$nginx_port"
      tls: false
    rules: $rules
    paranoia: 1
    mode: block
EOF
}
for mode in waf-off waf-on; do
    free_port
    port="$REPLY"
    free_port
    admin_port="$REPLY"
    write_config "$mode" "$port" "$admin_port" >"$tmp/$mode.yaml"
    "$waf" serve --config "$tmp/$mode.yaml" >"$tmp/$mode.log" 2>&1 &
    proxy_pid[$mode]=$!
    pids+=("$!")
    proxy_port[$mode]="$port"
    proxy_log[$mode]="$tmp/$mode.log"
done
for mode in waf-off waf-on; do
    wait_listening "$mode proxy" "${proxy_pid[$mode]}" "${proxy_port[$mode]}" "${proxy_log[$mode]}"
done

# --- Sanity checks with curl: clean requests reach nginx through both proxies, and the WAF is
# really on in waf-on only ------------------------------------------------------------------
authorize_path="/contoso.onmicrosoft.com/B2C_1A_signup_signin/oauth2/v2.0/authorize"
clean_path="$authorize_path?client_id=8f3c2a61-4d7e-4b5a-9c1e-2f6d8b7a0e93&response_type=code&scope=openid"
attack_path="$authorize_path?q=1%27%20OR%20%271%27%3D%271" # q=1' OR '1'='1
fetch() {
    # Prints "<status> <body>" of a GET through a proxy.
    curl -sS --max-time 5 -H 'Host: login.contoso.com' -o "$tmp/curl.body" -w '%{http_code}' \
        "http://127.0.0.1:$1$2" || true
    printf ' %s' "$(head -c 200 "$tmp/curl.body" 2>/dev/null | tr -d '\r\n')"
}
for mode in waf-off waf-on; do
    got="$(fetch "${proxy_port[$mode]}" "$clean_path")"
    [[ "$got" == "200 ok" ]] || {
        show_log "${proxy_log[$mode]}"
        die "$mode: a clean authorize GET answered '$got', expected '200 ok' from nginx"
    }
    want="200"
    [[ "$mode" == "waf-on" ]] && want="403"
    got="$(fetch "${proxy_port[$mode]}" "$attack_path")"
    [[ "${got%% *}" == "$want" ]] || {
        show_log "${proxy_log[$mode]}"
        die "$mode: the SQL injection ?q=1' OR '1'='1 answered '${got:0:80}', expected $want"
    }
done
echo "run.sh: nginx on :$nginx_port, waf-off on :${proxy_port[waf-off]}, waf-on on :${proxy_port[waf-on]}; clean GET 200 on both, attack 403 on waf-on only" >&2

# --- Measuring ------------------------------------------------------------------------------
to_ms() {
    # wrk prints latencies as 850.00us, 1.23ms, 1.02s or 1.50m.
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : -1
        if (f < 0) exit 1
        printf "%.3f", n * f }'
}
failures=0
results="$tmp/results.txt" # kind mode round rps p50_ms p99_ms non2xx socket_errors
: >"$results"
run_wrk() {
    # $1 = kind (authorize | login), $2 = mode, $3 = duration, $4 = round (0 = warm-up).
    local kind="$1" mode="$2" dur="$3" round="$4" log rps p50 p99 non2xx sockerr
    log="$tmp/wrk-$kind-$mode-$round.txt"
    # The proxy must still be up, or wrk would only measure connection errors.
    kill -0 "${proxy_pid[$mode]}" 2>/dev/null || {
        show_log "${proxy_log[$mode]}"
        die "the $mode proxy has exited"
    }
    # In the background and waited for, so that an interrupt stops it at once (the trap runs
    # only once a foreground command has finished).
    wrk -t"$threads" -c"$connections" -d"$dur" --latency -s "$here/$kind.lua" \
        "http://127.0.0.1:${proxy_port[$mode]}/" >"$log" 2>&1 &
    wrk_pid=$!
    if ! wait "$wrk_pid"; then
        wrk_pid=""
        cat "$log" >&2
        die "wrk failed ($kind, $mode)"
    fi
    wrk_pid=""
    rps="$(awk '/^Requests\/sec:/ { print $2 }' "$log")"
    p50="$(awk '$1 == "50%" { print $2 }' "$log")"
    p99="$(awk '$1 == "99%" { print $2 }' "$log")"
    non2xx="$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$log")"
    sockerr="$(awk '/Socket errors:/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' "$log")"
    [[ -n "$rps" && -n "$p50" && -n "$p99" ]] || {
        cat "$log" >&2
        die "could not read requests/s and latencies from wrk's output ($kind, $mode)"
    }
    p50="$(to_ms "$p50")"
    p99="$(to_ms "$p99")"
    non2xx="${non2xx:-0}"
    sockerr="${sockerr:-0}"
    if ((non2xx > 0 || sockerr > 0)); then
        # The benign requests must all pass: a 403 means a false positive, a 5xx or a socket
        # error a broken proxy. Either way the figure is not a measurement of inspection.
        failures=$((failures + 1))
        {
            echo
            echo "!!!! FAILURE: $kind through $mode: $non2xx non-2xx responses, $sockerr socket errors"
            cat "$log"
            show_log "${proxy_log[$mode]}"
        } >&2
        ((round > 0)) || die "the warm-up run failed; not measuring"
    fi
    if ((round > 0)); then
        echo "$kind $mode $round $rps $p50 $p99 $non2xx $sockerr" >>"$results"
        printf 'run.sh: round %d/%d %-9s %-7s %10.0f req/s  p50 %8.3f ms  p99 %8.3f ms\n' \
            "$round" "$rounds" "$kind" "$mode" "$rps" "$p50" "$p99" >&2
    fi
}

kinds=(authorize login)
if [[ "$warmup" != "0" && "$warmup" != "0s" ]]; then
    # Warm both proxies' connection pools (and nginx's) before anything is measured; also fails
    # fast if a benign request is refused.
    for kind in "${kinds[@]}"; do
        for mode in waf-off waf-on; do run_wrk "$kind" "$mode" "$warmup" 0; done
    done
fi
# Interleaved: off and on back to back for each request in every round, so that a slow patch
# of the shared machine hits both modes rather than one.
for ((round = 1; round <= rounds; round++)); do
    for kind in "${kinds[@]}"; do
        for mode in waf-off waf-on; do run_wrk "$kind" "$mode" "$duration" "$round"; done
    done
done

# --- The table: medians over the rounds -----------------------------------------------------
median() {
    # Median of column $3 of the results rows of kind $1 and mode $2.
    awk -v k="$1" -v m="$2" -v c="$3" '$1 == k && $2 == m { print $c }' "$results" | sort -g |
        awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
label() { case "$1" in authorize) echo "authorize GET" ;; login) echo "login POST 1 KB" ;; esac; }
table="$(
    printf '%s\n' "waf load test, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs: medians of $rounds rounds of wrk -t$threads -c$connections -d$duration, proxy threads $proxy_threads, $(basename "$waf") = $waf"
    echo
    echo "| request | mode | requests/s | p50 | p99 | ratio on/off |"
    echo "|---|---|---:|---:|---:|---:|"
    for kind in "${kinds[@]}"; do
        off="$(median "$kind" waf-off 4)"
        for mode in waf-off waf-on; do
            rps="$(median "$kind" "$mode" 4)"
            ratio="—"
            [[ "$mode" == "waf-on" ]] && ratio="$(awk -v a="$rps" -v b="$off" 'BEGIN { printf "%.2f", a / b }')"
            # A mode with a failed run says so in its row, not only below the table.
            bad="$(awk -v k="$kind" -v m="$mode" '$1 == k && $2 == m && $7 + $8 > 0' "$results" | wc -l)"
            shown="$mode"
            ((bad == 0)) || shown="$mode **FAILED in $bad run(s)**"
            printf '| %s | %s | %.0f | %.2f ms | %.2f ms | %s |\n' "$(label "$kind")" "$shown" \
                "$rps" "$(median "$kind" "$mode" 5)" "$(median "$kind" "$mode" 6)" "$ratio"
        done
    done
    if ((failures)); then
        echo
        echo "**FAILED: $failures run(s) had non-2xx responses or socket errors; these figures are not valid.**"
    fi
)"
echo
printf '%s\n' "$table"
[[ -z "$out" ]] || printf '%s\n' "$table" >"$out"
if ((failures)); then
    die "$failures run(s) had non-2xx responses or socket errors (details above)"
fi
