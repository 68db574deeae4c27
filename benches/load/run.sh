#!/usr/bin/env bash
# Load test on loopback: our proxy (`waf serve`) with the WAF off, with our ruleset and with the
# OWASP CRS 3.3.4, against plain nginx and the peer, nginx + ModSecurity 3 + CRS 3.3.4 (all from
# Debian's packages), for the authorize GET and the ~1 KB login POST of the criterion benchmarks
# (benches/src/lib.rs), every proxy forwarding to the same nginx origin that answers "ok".
# Prints one markdown table of medians over interleaved rounds (requests/s, p50, p99, resident
# memory, ratio against waf-off of the same run) and the targets of issue 6. See
# benches/load/README.md.
#
#   bash benches/load/run.sh [--modes LIST] [--duration 15s] [--rounds 3] [--out FILE] [--smoke] ...
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# The command as typed, for the report.
command_line="bash benches/load/run.sh${*:+ $*}"

all_modes="waf-off,waf-ours,waf-crs,nginx,nginx-modsec"

usage() {
    cat <<EOF
usage: bash benches/load/run.sh [options]

  --modes LIST         comma-separated subset of $all_modes
                       (default: all, in that order)
  --waf PATH           the waf binary (default: target/release/waf, built if missing)
  --duration D         wrk duration of each measured run (default 15s)
  --connections N      wrk connections (default 32)
  --threads N          wrk threads (default 1)
  --proxy-threads N    the proxy's \`threads\`, and nginx's worker_processes (default 1)
  --rounds N           interleaved rounds; the table shows medians (default 3)
  --warmup D           an unmeasured wrk run per request and mode first (default 2s, 0 = none)
  --out FILE           also write a markdown report there (machine, table, targets)
  --keep               keep the temp dir (configs, logs, audit logs, wrk output) and say where
  --strict             any non-2xx response fails the run, false positives included
  --smoke              a quick check for CI: --rounds 1 --duration 1s --warmup 0 (options
                       given explicitly still win); every sanity check still runs, any
                       non-2xx fails but the unmodified CRS's own false positives (counted
                       and shown); the targets are not judged
EOF
}

die() {
    printf 'run.sh: error: %s\n' "$*" >&2
    exit 1
}

# --- Arguments -----------------------------------------------------------------------------
waf=""
modes_arg="$all_modes"
duration=""
connections=32
threads=1
proxy_threads=1
rounds=""
warmup=""
out=""
smoke=0
keep=0
strict=0
while (($#)); do
    case "$1" in
    -h | --help)
        usage
        exit 0
        ;;
    --smoke | --keep | --strict)
        [[ "$1" != --smoke ]] || smoke=1
        [[ "$1" != --keep ]] || keep=1
        [[ "$1" != --strict ]] || strict=1
        shift
        continue
        ;;
    --modes | --waf | --duration | --connections | --threads | --proxy-threads | --rounds | --warmup | --out)
        # Say which value is missing rather than "unbound variable".
        (($# >= 2)) || die "$1 needs a value"
        ;;
    *)
        usage >&2
        die "unknown argument: $1"
        ;;
    esac
    case "$1" in
    --modes) modes_arg="$2" ;;
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
if ((smoke)); then
    duration="${duration:-1s}"
    rounds="${rounds:-1}"
    warmup="${warmup:-0}"
else
    duration="${duration:-15s}"
    rounds="${rounds:-3}"
    warmup="${warmup:-2s}"
fi
for v in connections threads proxy_threads rounds; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "--${v//_/-} must be a positive integer, got '${!v}'"
done
[[ "$duration" =~ ^[0-9]+[smh]?$ ]] || die "--duration must look like 15s, got '$duration'"
[[ "$warmup" =~ ^[0-9]+[smh]?$ ]] || die "--warmup must look like 2s, got '$warmup'"
modes=()
IFS=',' read -r -a requested <<<"$modes_arg"
# Always in the canonical order, whatever order they were given in, each once.
for m in ${all_modes//,/ }; do
    for r in "${requested[@]}"; do
        if [[ "$r" == "$m" ]]; then
            modes+=("$m")
            break
        fi
    done
done
for r in "${requested[@]}"; do
    [[ ",$all_modes," == *",$r,"* ]] || die "unknown mode '$r' (modes: $all_modes)"
done
((${#modes[@]})) || die "--modes is empty"
has_mode() {
    [[ " ${modes[*]} " == *" $1 "* ]]
}
is_waf_mode() {
    [[ "$1" == waf-* ]]
}
# Our proxy with rules: the modes whose engine time the inspection column shows.
runs_engine() {
    [[ "$1" == waf-ours || "$1" == waf-crs ]]
}
# The modes that must block the SQL injection.
inspects() {
    [[ "$1" == waf-ours || "$1" == waf-crs || "$1" == nginx-modsec ]]
}

# --- Tools, from Debian's packages, installed only when missing ------------------------------
crs_setup=/etc/modsecurity/crs/crs-setup.conf
crs_rules=/usr/share/modsecurity-crs/rules
modsec_module=/usr/lib/nginx/modules/ngx_http_modsecurity_module.so
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
if has_mode waf-crs || has_mode nginx-modsec; then
    [[ -f "$crs_setup" && -d "$crs_rules" ]] || missing+=(modsecurity-crs)
fi
if has_mode nginx-modsec; then
    [[ -f "$modsec_module" ]] || missing+=(libnginx-mod-http-modsecurity)
fi
if ((${#missing[@]})); then
    echo "run.sh: installing ${missing[*]}" >&2
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
nginx_bin="$(find_nginx)"
[[ -n "$nginx_bin" ]] || die "nginx is not installed"
if has_mode waf-crs || has_mode nginx-modsec; then
    [[ -f "$crs_setup" && -d "$crs_rules" ]] || die "the CRS is not at $crs_setup and $crs_rules"
fi
if has_mode nginx-modsec; then
    [[ -f "$modsec_module" ]] || die "ModSecurity's nginx module is not at $modsec_module"
fi

# --- The proxy binary: the one given, else the release build, brought up to date (cargo
# does nothing when it is: a build left from older sources was measured and reported as the
# current commit) ---------------------------------------------------------------------------
if [[ -z "$waf" ]]; then
    waf="$repo/target/release/waf"
    (cd "$repo" && cargo build --release --locked -q -p waf-proxy) ||
        die "could not build $waf"
fi
[[ -x "$waf" ]] || die "no executable waf binary at $waf"
"$waf" serve --help >/dev/null 2>&1 ||
    die "$waf has no 'serve' subcommand (an old build?); rebuild it with: cargo build --release --locked -p waf-proxy"

# --- Temp dir and cleanup: every process we start is recorded in pids and stopped on exit ----
tmp="$(mktemp -d "${TMPDIR:-/tmp}/waf-load.XXXXXX")"
# nginx's workers run as nobody when we are root; let them reach their temp paths in here.
chmod 755 "$tmp"
pids=()
nginx_masters=()
wrk_pid=""
cleanup() {
    local pid i alive
    [[ -z "$wrk_pid" ]] || pids+=("$wrk_pid")
    # nginx's workers are children of its master, not ours: stop them too if the master is
    # killed before it could.
    for pid in "${nginx_masters[@]}"; do
        for pid in $(ps -o pid= --ppid "$pid" 2>/dev/null || true); do pids+=("$pid"); done
    done
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
    if ((keep)); then
        echo "run.sh: kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Free ports on 127.0.0.1: random, below the ephemeral range (so no outgoing connection of
# wrk or the proxies can take them), and not already listening -------------------------------
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
    # Waits until a process we started listens on its port, up to 120 s (rules compile before
    # the proxy listens; the CRS takes a while on a busy machine); fails at once if the process
    # exits.
    local name="$1" pid="$2" port="$3" log="$4" i
    for ((i = 0; i < 1200; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            show_log "$log"
            die "$name exited before listening on 127.0.0.1:$port"
        fi
        if listening "$port"; then return 0; fi
        sleep 0.1
    done
    show_log "$log"
    die "$name did not listen on 127.0.0.1:$port within 120 s"
}

# --- nginx configs: the origin, the plain reverse proxy and the peer --------------------------
user_line=""
if [[ "$(id -u)" -eq 0 ]]; then
    # As root nginx needs a user for its workers; Debian's default one (www-data) comes from its
    # own nginx.conf, which we do not use.
    if getent group nogroup >/dev/null; then user_line="user nobody nogroup;"; else user_line="user nobody;"; fi
fi
nginx_conf() {
    # $1 = its folder, $2 = worker_processes, $3 = lines before `events` (load_module), $4 =
    # error_log level (default warn), then the `server` block on standard input.
    local dir="$1" level="${4:-warn}"
    cat <<EOF
# Written by benches/load/run.sh.
$user_line
$3
worker_processes $2;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log $level;
events {
    worker_connections 4096;
}
http {
    access_log off;
    # One connection per client connection for the whole run.
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    # The login POST's 1 KB body (and larger) is read in memory, never refused.
    client_body_buffer_size 64k;
    client_max_body_size 1m;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
$(cat)
}
EOF
}
start_nginx() {
    # $1 = name (its folder in $tmp holds nginx.conf). Sets REPLY to the master's pid.
    local dir="$tmp/$1"
    # -e: the error log before the config is read (the default one is in /var/log/nginx).
    "$nginx_bin" -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
    pids+=("$!")
    nginx_masters+=("$!")
    REPLY="$!"
}

# The origin: one worker, "ok" to every request, keep-alive on, bodies accepted.
free_port
origin_port="$REPLY"
mkdir -p "$tmp/origin"
nginx_conf "$tmp/origin" 1 "" >"$tmp/origin/nginx.conf" <<EOF
    server {
        listen 127.0.0.1:$origin_port;
        location / {
            return 200 "ok";
        }
    }
EOF
start_nginx origin
origin_pid="$REPLY"
wait_listening "the origin (nginx)" "$origin_pid" "$origin_port" "$tmp/origin/error.log"

# The peer's ModSecurity configuration: Debian's recommended modsecurity.conf (shipped with
# libnginx-mod-http-modsecurity; upstream's modsecurity.conf-recommended), with the changes a
# blocking deployment behind this benchmark needs, then CRS 3.3.4 exactly as our waf-crs site
# loads it (crs-setup.conf, then every rule file).
modsec_conf() {
    local dir="$1" src=""
    for f in /usr/share/nginx/docs/modsecurity/modsecurity.conf /etc/nginx/modsecurity.conf \
        /etc/modsecurity/modsecurity.conf-recommended; do
        if [[ -f "$f" ]]; then
            src="$f"
            break
        fi
    done
    [[ -n "$src" ]] || die "no modsecurity.conf-recommended from Debian's packages found"
    # unicode.mapping is named relative to the config; Debian puts it next to it.
    local unicode
    unicode="$(dirname "$src")/unicode.mapping"
    [[ -f "$unicode" ]] || unicode=/etc/nginx/unicode.mapping
    {
        echo "# Written by benches/load/run.sh from $src; the lines changed say so."
        sed -E \
            -e 's|^SecRuleEngine .*|SecRuleEngine On  # run.sh: block (Debian: DetectionOnly)|' \
            -e 's|^SecRequestBodyAccess .*|SecRequestBodyAccess On  # run.sh: inspect the login POST|' \
            -e 's|^SecResponseBodyAccess .*|SecResponseBodyAccess Off  # run.sh: our proxy does not inspect responses either|' \
            -e 's|^SecAuditEngine .*|SecAuditEngine Off  # run.sh: no audit log, as asked of the benchmark|' \
            -e "s|^SecAuditLog .*|SecAuditLog $dir/modsec_audit.log  # run.sh: (unused) not in /var/log|" \
            -e "s|^SecTmpDir .*|SecTmpDir $dir/  # run.sh|" \
            -e "s|^SecDataDir .*|SecDataDir $dir/  # run.sh|" \
            -e "s|^SecUnicodeMapFile [^ ]+|SecUnicodeMapFile $unicode|" \
            -e 's|^SecStatusEngine .*|SecStatusEngine Off  # run.sh: no status call home; loopback only|' \
            "$src"
    } >"$dir/modsecurity.conf"
    # Each of those directives must be there, changed: a differently shaped file from a future
    # Debian must not silently give another configuration.
    local want
    for want in 'SecRuleEngine On' 'SecRequestBodyAccess On' 'SecResponseBodyAccess Off' \
        'SecAuditEngine Off' "SecUnicodeMapFile $unicode"; do
        grep -q "^$want" "$dir/modsecurity.conf" || die "$src: could not set '$want' in the peer's modsecurity.conf"
    done
    cat >"$dir/main.conf" <<EOF
# Written by benches/load/run.sh: ModSecurity 3 + OWASP CRS 3.3.4 at paranoia level 1, blocking.
Include $dir/modsecurity.conf
Include $crs_setup
# Paranoia level 1, said explicitly (crs-setup.conf leaves its rule 900000 commented out and
# REQUEST-901 would default to 1 as well). The anomaly threshold stays the CRS default, 5, as
# in our waf-crs site.
SecAction "id:900000,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level=1"
Include $crs_rules/*.conf
EOF
}

# --- The five modes, started one after the other (each one's start-up time is its own) ------
declare -A port pid log ready_s admin
write_waf_config() {
    # $1 = mode, $2 = listen port, $3 = admin port.
    local rules
    case "$1" in
    waf-off) rules="[]" ;;
    waf-ours) rules="[\"$repo/rules\"]" ;;
    waf-crs) rules="[\"$crs_setup\", \"$crs_rules\"]" ;;
    esac
    cat <<EOF
# Written by benches/load/run.sh ($1).
listen: "127.0.0.1:$2"
admin: "127.0.0.1:$3"
audit: {path: "$tmp/$1/audit.jsonl", all_requests: false}
upgrade_sock: "$tmp/$1/upgrade.sock"
threads: $proxy_threads
sites:
  - hosts: ["*"]
    upstream:
      address: "127.0.0.1:$origin_port"
      tls: false
    rules: $rules
    paranoia: 1
    mode: block
EOF
}
for mode in "${modes[@]}"; do
    free_port
    port[$mode]="$REPLY"
    mkdir -p "$tmp/$mode"
    t0="$EPOCHREALTIME"
    if is_waf_mode "$mode"; then
        free_port
        admin[$mode]="$REPLY"
        write_waf_config "$mode" "${port[$mode]}" "$REPLY" >"$tmp/$mode/waf.yaml"
        log[$mode]="$tmp/$mode/waf.log"
        "$waf" serve --config "$tmp/$mode/waf.yaml" >"${log[$mode]}" 2>&1 &
        pid[$mode]=$!
        pids+=("$!")
    else
        pre="" modsec_lines="" level=warn
        if [[ "$mode" == nginx-modsec ]]; then
            # ModSecurity logs the rules that matched at nginx's `info` level, the block itself
            # at `error`: both, to name the rules behind a block. Clean requests log nothing.
            level=info
            modsec_conf "$tmp/$mode"
            pre="load_module $modsec_module;"
            modsec_lines="        modsecurity on;
        modsecurity_rules_file $tmp/$mode/main.conf;"
        fi
        # A reverse proxy like ours: keep-alive connections to the origin, the client's Host
        # kept, the body read (up to 64 KB in memory) before it is forwarded.
        nginx_conf "$tmp/$mode" "$proxy_threads" "$pre" "$level" >"$tmp/$mode/nginx.conf" <<EOF
    upstream origin {
        server 127.0.0.1:$origin_port;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:${port[$mode]};
        location / {
$modsec_lines
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
        }
    }
EOF
        log[$mode]="$tmp/$mode/error.log"
        start_nginx "$mode"
        pid[$mode]="$REPLY"
    fi
    wait_listening "$mode" "${pid[$mode]}" "${port[$mode]}" "${log[$mode]}"
    ready_s[$mode]="$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')"
    echo "run.sh: $mode listens on 127.0.0.1:${port[$mode]} (ready after ${ready_s[$mode]} s)" >&2
done

# --- What the WAFs log ----------------------------------------------------------------------
# The log in which a mode's WAF records what it blocks: our audit log, ModSecurity's lines in
# nginx's error log.
block_log() {
    if is_waf_mode "$1"; then
        echo "$tmp/$1/audit.jsonl"
    elif [[ "$1" == nginx-modsec ]]; then
        echo "${log[$1]}"
    fi
}
line_count() {
    if [[ -f "$1" ]]; then wc -l <"$1"; else echo 0; fi
}
blocks_in() {
    # $1 = mode, $2 = a part of its block log: how many requests it blocked there.
    if is_waf_mode "$1"; then
        grep -c -E '"action": ?"blocked"' "$2" || true
    else
        grep -c 'ModSecurity: Access denied' "$2" || true
    fi
}
block_reasons() {
    # $1 = mode, $2 = a part of its block log: "rule-id field" for every rule that contributed
    # to a block, one line per rule and blocked request. Ours: the rules with a score when some
    # have one (not 110100-style bookkeeping rules), else all (the CRS scores through setvar),
    # but the anomaly-score rule 949110 that turns them into a block; a rule's field is the
    # first it matched (later ones are its chain's).
    if is_waf_mode "$1"; then
        grep -E '"action": ?"blocked"' "$2" | awk '{
            line = $0; n = 0
            while (match(line, /"id": ?[0-9]+|"score": ?[0-9]+|"target": ?"[^"]*"/)) {
                tok = substr(line, RSTART, RLENGTH); line = substr(line, RSTART + RLENGTH)
                if (tok ~ /^"id"/) { n++; v = tok; gsub(/[^0-9]/, "", v); id[n] = v; sc[n] = 0; tg[n] = "" }
                else if (tok ~ /^"score"/ && n) { v = tok; gsub(/[^0-9]/, "", v); sc[n] = v + 0 }
                else if (tok ~ /^"target"/ && n && tg[n] == "") {
                    v = tok; sub(/^"target": ?"/, "", v); sub(/"$/, "", v); sub(/^MATCHED_VARS:/, "", v); tg[n] = v
                }
            }
            scored = 0
            for (i = 1; i <= n; i++) if (sc[i] > 0) scored = 1
            for (i = 1; i <= n; i++) if (id[i] != 949110 && (!scored || sc[i] > 0)) print id[i], tg[i]
        }'
    else
        # The rules that matched are ModSecurity's warnings (nginx's `info` level).
        grep 'ModSecurity: Warning' "$2" |
            sed -E -n 's/.*\[id "([0-9]+)"\].*found within ([A-Za-z_]+:[^:]*):.*/\1 \2/p; t; s/.*\[id "([0-9]+)"\].*/\1/p'
    fi || true
}
crs_mode() {
    [[ "$1" == waf-crs || "$1" == nginx-modsec ]]
}

# --- Sanity checks with curl: clean requests reach the origin through every mode, and the
# WAF is really on exactly where it should be, for the query string and for the login body ---
authorize_path="/contoso.onmicrosoft.com/B2C_1A_signup_signin/oauth2/v2.0/authorize"
login_path="/contoso.onmicrosoft.com/B2C_1A_signup_signin/SelfAsserted?tx=StateProperties=eyJUSUQiOiI1&p=B2C_1A_signup_signin"
clean_path="$authorize_path?client_id=8f3c2a61-4d7e-4b5a-9c1e-2f6d8b7a0e93&response_type=code&scope=openid"
attack_path="$authorize_path?q=1%27%20OR%20%271%27%3D%271" # q=1' OR '1'='1
clean_body="request_type=RESPONSE&signInName=zoe.martin%40contoso.com&password=Blue%2BHarbor-2024%21&rememberMe=true"
attack_body="request_type=RESPONSE&signInName=1%27%20OR%20%271%27%3D%271&password=x&rememberMe=true"
fetch() {
    # Prints "<status> <body>" of a request through a mode: $1 = port, $2 = path, [$3 = form
    # body: a POST].
    local post=()
    [[ -z "${3:-}" ]] || post=(-H 'Content-Type: application/x-www-form-urlencoded' --data-binary "$3")
    curl -sS --max-time 10 -H 'Host: login.contoso.com' "${post[@]}" -o "$tmp/curl.body" \
        -w '%{http_code}' "http://127.0.0.1:$1$2" || true
    printf ' %s' "$(head -c 200 "$tmp/curl.body" 2>/dev/null | tr -d '\r\n')"
}
why_blocked() {
    # What a mode's WAF logged about the requests it blocked: rule ids and the fields they
    # matched, then the tail of its log.
    local mode="$1" blog
    blog="$(block_log "$mode")"
    if [[ -n "$blog" && -f "$blog" ]]; then
        echo "---- $mode: rules behind its blocks (count, rule id, field) ----" >&2
        block_reasons "$mode" "$blog" | sort | uniq -c | sort -rn | head -20 >&2
    fi
    show_log "${log[$mode]}"
}
check() {
    # $1 = mode, $2 = what, $3 = expected status (and body, for "200 ok"), $4.. = fetch's args.
    local mode="$1" what="$2" want="$3" got
    shift 3
    got="$(fetch "${port[$mode]}" "$@")"
    if [[ "$want" == *" "* ]]; then [[ "$got" == "$want" ]]; else [[ "${got%% *}" == "$want" ]]; fi || {
        why_blocked "$mode"
        die "$mode: $what answered '${got:0:80}', expected '$want'"
    }
}
for mode in "${modes[@]}"; do
    check "$mode" "a clean authorize GET" "200 ok" "$clean_path"
    check "$mode" "a clean login POST" "200 ok" "$login_path" "$clean_body"
    want=200
    inspects "$mode" && want=403
    check "$mode" "the SQL injection ?q=1' OR '1'='1" "$want" "$attack_path"
    check "$mode" "a login POST with signInName=1' OR '1'='1 in its body" "$want" "$login_path" "$attack_body"
done
echo "run.sh: every mode forwards clean requests to the origin (200 ok); the SQL injection in the query and in the login body gets 403 from the WAFs and 200 from the others" >&2
# What the WAFs log from here on belongs to the load: remember where their logs stand.
declare -A audit_start
for mode in "${modes[@]}"; do
    if is_waf_mode "$mode"; then
        audit_start[$mode]="$(wc -l <"$tmp/$mode/audit.jsonl" 2>/dev/null || echo 0)"
    else
        audit_start[$mode]="$(wc -l <"${log[$mode]}")"
    fi
done

# --- Resident memory: the proxy's process, or nginx's master and workers, in KiB -------------
procs_of() {
    # The processes that make up a mode: nginx's workers are children of its master. One pid
    # per line with no padding: `ps` right-aligns pids, and `mapfile` keeps the spaces, which
    # once dropped every worker from the "RSS under load" column when the pids had fewer digits.
    local p="${pid[$1]}"
    echo "$p"
    if ! is_waf_mode "$1"; then
        ps -o pid= --ppid "$p" 2>/dev/null | awk '{ print $1 }' || true
    fi
}
rss_kib() {
    # Sum of VmRSS of the given pids (builtins only: this runs while wrk measures).
    local p k v total=0
    for p in "$@"; do
        [[ -r "/proc/$p/status" ]] || continue
        while read -r k v _; do
            if [[ "$k" == "VmRSS:" ]]; then
                total=$((total + v))
                break
            fi
        done <"/proc/$p/status" 2>/dev/null || true
    done
    echo "$total"
}
declare -A idle_rss
for mode in "${modes[@]}"; do
    # shellcheck disable=SC2046
    idle_rss[$mode]="$(rss_kib $(procs_of "$mode"))"
done

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
results="$tmp/results.txt" # kind mode round rps p50_ms p99_ms non2xx socket_errors rss_kib requests false_positives failed inspection_us
inspection_totals() {
    # "<seconds> <requests>" a waf mode's engine has inspected so far, from the proxy's own
    # histogram (waf_inspection_duration_seconds, summed over sites). Its difference over a
    # run tells the engine's time from the rest of the proxy's, in the same run.
    curl -sS --max-time 5 "http://127.0.0.1:${admin[$1]}/metrics" 2>/dev/null |
        awk '/^waf_inspection_duration_seconds_sum/ { s += $NF }
             /^waf_inspection_duration_seconds_count/ { n += $NF }
             END { printf "%.9f %d\n", s, n }'
}
: >"$results"
run_wrk() {
    # $1 = kind (authorize | login), $2 = mode, $3 = duration, $4 = round (0 = warm-up).
    local kind="$1" mode="$2" dur="$3" round="$4" wlog rps p50 p99 non2xx sockerr requests
    local procs rss max_rss=0 blog before=0 part blocked=0 fp=0 failed
    local seconds0=0 inspected0=0 seconds1=0 inspected1=0 inspection_us=-
    wlog="$tmp/wrk-$kind-$mode-$round.txt"
    # The proxy must still be up, or wrk would only measure connection errors.
    kill -0 "${pid[$mode]}" 2>/dev/null || {
        show_log "${log[$mode]}"
        die "$mode has exited"
    }
    mapfile -t procs < <(procs_of "$mode")
    blog="$(block_log "$mode")"
    [[ -z "$blog" ]] || before="$(line_count "$blog")"
    ! runs_engine "$mode" || read -r seconds0 inspected0 < <(inspection_totals "$mode")
    # In the background, so that an interrupt stops it at once (the trap runs only once a
    # foreground command has finished) and so that the resident size can be sampled meanwhile.
    # --timeout 10s: the peer's tail under this load is seconds long on a busy machine; a slow
    # answer is a latency, not a socket error.
    wrk -t"$threads" -c"$connections" -d"$dur" --timeout 10s --latency -s "$here/$kind.lua" \
        "http://127.0.0.1:${port[$mode]}/" >"$wlog" 2>&1 &
    wrk_pid=$!
    while kill -0 "$wrk_pid" 2>/dev/null; do
        rss="$(rss_kib "${procs[@]}")"
        ((rss <= max_rss)) || max_rss="$rss"
        sleep 0.25
    done
    if ! wait "$wrk_pid"; then
        wrk_pid=""
        cat "$wlog" >&2
        die "wrk failed ($kind, $mode)"
    fi
    wrk_pid=""
    if runs_engine "$mode"; then
        read -r seconds1 inspected1 < <(inspection_totals "$mode")
        inspection_us="$(awk -v s="$seconds1" -v t="$seconds0" -v n="$inspected1" -v m="$inspected0" \
            'BEGIN { if (n > m) printf "%.1f", 1e6 * (s - t) / (n - m); else print "-" }')"
    fi
    rps="$(awk '/^Requests\/sec:/ { print $2 }' "$wlog")"
    p50="$(awk '$1 == "50%" { print $2 }' "$wlog")"
    p99="$(awk '$1 == "99%" { print $2 }' "$wlog")"
    requests="$(awk '/ requests in / { print $1 }' "$wlog")"
    non2xx="$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$wlog")"
    sockerr="$(awk '/Socket errors:/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' "$wlog")"
    [[ -n "$rps" && -n "$p50" && -n "$p99" && -n "$requests" ]] || {
        cat "$wlog" >&2
        die "could not read requests/s and latencies from wrk's output ($kind, $mode)"
    }
    p50="$(to_ms "$p50")"
    p99="$(to_ms "$p99")"
    non2xx="${non2xx:-0}"
    sockerr="${sockerr:-0}"
    part="$tmp/$mode/log-$kind-$round.txt"
    if [[ -n "$blog" ]]; then
        tail -n +"$((before + 1))" "$blog" >"$part" 2>/dev/null || : >"$part"
        blocked="$(blocks_in "$mode" "$part")"
    fi
    failed=0
    if ((non2xx > 0 && sockerr == 0 && non2xx <= blocked)); then
        # Every non-2xx is a block the WAF's own log accounts for: false positives of its rules
        # on the benign sign-in values. They are counted, shown with their rules and fields, and
        # fatal under --strict, and under --smoke but for the unmodified CRS's (see the README).
        fp="$non2xx"
        block_reasons "$mode" "$part" >>"$tmp/$mode/false-positives.txt"
        printf 'run.sh: %s false positive(s) on %s through %s (rule, field): %s\n' \
            "$fp" "$kind" "$mode" "$(block_reasons "$mode" "$part" | sort | uniq -c | sort -rn |
                awk '{ printf "%s%s %s (%s)", (NR > 1 ? ", " : ""), $2, $3, $1 }')" >&2
        if ((strict)) || { ((smoke)) && ! crs_mode "$mode"; }; then
            failed=1
            failures=$((failures + 1))
            echo "!!!! FAILURE: false positives of $mode (--strict or --smoke)" >&2
        fi
    elif ((non2xx > 0 || sockerr > 0)); then
        # The benign requests must all pass: a non-2xx the WAF did not log as a block, or a
        # socket error, is a broken proxy; the figure is not a measurement of inspection.
        failed=1
        failures=$((failures + 1))
        {
            echo
            echo "!!!! FAILURE: $kind through $mode: $non2xx non-2xx responses, $sockerr socket errors ($blocked blocks logged by the WAF)"
            cat "$wlog"
            why_blocked "$mode"
        } >&2
    fi
    ((failed == 0 || round > 0)) || die "the warm-up run failed; not measuring"
    if ((round > 0)); then
        echo "$kind $mode $round $rps $p50 $p99 $non2xx $sockerr $max_rss $requests $fp $failed $inspection_us" >>"$results"
        printf 'run.sh: round %d/%d %-9s %-12s %10.0f req/s  p50 %8.3f ms  p99 %8.3f ms  %6.1f MiB  inspection %s µs\n' \
            "$round" "$rounds" "$kind" "$mode" "$rps" "$p50" "$p99" "$(awk -v k="$max_rss" 'BEGIN { print k / 1024 }')" "$inspection_us" >&2
    fi
}

kinds=(authorize login)
if [[ "$warmup" != "0" && "$warmup" != "0s" ]]; then
    # Warm every mode's connection pools (and the origin's) before anything is measured; also
    # fails fast if a benign request is refused.
    for kind in "${kinds[@]}"; do
        for mode in "${modes[@]}"; do run_wrk "$kind" "$mode" "$warmup" 0; done
    done
fi
# Interleaved: every mode back to back for each request in every round, so that a slow patch
# of the shared machine hits all modes rather than one.
for ((round = 1; round <= rounds; round++)); do
    for kind in "${kinds[@]}"; do
        for mode in "${modes[@]}"; do run_wrk "$kind" "$mode" "$duration" "$round"; done
    done
done

# --- What the WAFs logged while the clean load ran ------------------------------------------
top() {
    # "item (count), ..." of the five commonest lines on standard input.
    sort | uniq -c | sort -rn | head -5 | awk '{ c = $1; sub(/^ *[0-9]+ /, ""); printf "%s%s (%s)", (NR > 1 ? ", " : ""), $0, c }'
}
declare -A logged
for mode in "${modes[@]}"; do
    [[ "$mode" != waf-off && "$mode" != nginx ]] || continue
    f="$(block_log "$mode")"
    tail -n +"$((audit_start[$mode] + 1))" "$f" >"$tmp/$mode/during-load.txt" 2>/dev/null || : >"$tmp/$mode/during-load.txt"
    n="$(blocks_in "$mode" "$tmp/$mode/during-load.txt")"
    if is_waf_mode "$mode"; then
        fl="$(grep -c -E '"action": ?"flagged"' "$tmp/$mode/during-load.txt" || true) flagged below the threshold"
    else
        fl="$(grep -c 'ModSecurity: Warning' "$tmp/$mode/during-load.txt" || true) rule warning(s)"
    fi
    why=""
    [[ ! -s "$tmp/$mode/false-positives.txt" ]] || why="; blocked by (rule field): $(top <"$tmp/$mode/false-positives.txt")"
    logged[$mode]="$n blocked, $fl$why"
done

# --- The tables: medians over the rounds ----------------------------------------------------
median() {
    # Median of column $3 of the results rows of kind $1 and mode $2.
    awk -v k="$1" -v m="$2" -v c="$3" '$1 == k && $2 == m { print $c }' "$results" | sort -g |
        awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
maximum() {
    awk -v k="$1" -v m="$2" -v c="$3" '$1 == k && $2 == m && $c > x { x = $c } END { print x + 0 }' "$results"
}
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "—" }'
}
label() { case "$1" in authorize) echo "authorize GET" ;; login) echo "login POST 1 KB" ;; esac; }
declare -A rps_of
for kind in "${kinds[@]}"; do
    for mode in "${modes[@]}"; do rps_of[$kind/$mode]="$(median "$kind" "$mode" 4)"; done
done
setting="medians of $rounds round(s) of \`wrk -t$threads -c$connections -d$duration --timeout 10s\` per request and mode, modes interleaved in each round; proxy threads / nginx workers: $proxy_threads"
table="$(
    echo "| request | mode | requests/s | p50 | p99 | RSS under load | × waf-off | inspection | false positives |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    for kind in "${kinds[@]}"; do
        for mode in "${modes[@]}"; do
            r="—"
            has_mode waf-off && r="$(ratio "${rps_of[$kind/$mode]}" "${rps_of[$kind/waf-off]}")"
            # A mode with a failed run says so in its row, not only below the table.
            bad="$(awk -v k="$kind" -v m="$mode" '$1 == k && $2 == m && $12' "$results" | wc -l)"
            shown="$mode"
            ((bad == 0)) || shown="$mode **FAILED in $bad run(s)**"
            fp="$(awk -v k="$kind" -v m="$mode" '$1 == k && $2 == m { f += $11; n += $10 }
                END { if (f == 0) print "0"; else printf "%d of %d (%.2f%%)", f, n, 100 * f / n }' "$results")"
            # The engine's mean time per request, and its share of the proxy threads' time.
            insp="—"
            if runs_engine "$mode"; then
                insp="$(awk -v k="$kind" -v m="$mode" '$1 == k && $2 == m && $13 != "-" { print $13 }' "$results" | sort -g |
                    awk -v r="${rps_of[$kind/$mode]}" -v t="$proxy_threads" '{ a[NR] = $1 }
                        END { if (!NR) { print "—"; exit }
                              u = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
                              printf "%.0f µs (%.0f%%)", u, 100 * u * r / 1e6 / t }')"
            fi
            printf '| %s | %s | %.0f | %.2f ms | %.2f ms | %.1f MiB | %s | %s | %s |\n' "$(label "$kind")" "$shown" \
                "${rps_of[$kind/$mode]}" "$(median "$kind" "$mode" 5)" "$(median "$kind" "$mode" 6)" \
                "$(awk -v k="$(maximum "$kind" "$mode" 9)" 'BEGIN { print k / 1024 }')" "$r" "$insp" "$fp"
        done
    done
)"
targets="$(
    echo "| target | request | measured | goal | |"
    echo "|---|---|---:|---:|---|"
    target_row() {
        # $1 = numerator mode, $2 = denominator mode, $3 = goal ("" = for reference only).
        local kind r verdict
        for kind in "${kinds[@]}"; do
            if has_mode "$1" && has_mode "$2"; then
                r="$(ratio "${rps_of[$kind/$1]}" "${rps_of[$kind/$2]}")"
                if [[ -z "$3" ]]; then
                    verdict="reference"
                elif ((smoke)); then
                    verdict="not judged (--smoke)"
                elif ((failures)); then
                    verdict="not judged (failed runs)"
                elif awk -v r="${rps_of[$kind/$1]}" -v b="${rps_of[$kind/$2]}" -v g="$3" 'BEGIN { exit !(b > 0 && r / b >= g) }'; then
                    verdict="**met**"
                else
                    verdict="**missed**"
                fi
            else
                r="—"
                verdict="not run"
            fi
            printf '| %s / %s | %s | %s | %s | %s |\n' "$1" "$2" "$(label "$kind")" "$r" "${3:+≥ $3}" "$verdict"
        done
    }
    target_row waf-ours waf-off 0.9
    target_row waf-crs waf-off 0.5
    target_row waf-ours nginx-modsec 50
    target_row waf-crs nginx-modsec 50
    target_row nginx-modsec nginx ""
)"
modes_table="$(
    echo "| mode | what | ready after | RSS idle | logged during the load |"
    echo "|---|---|---:|---:|---|"
    for mode in "${modes[@]}"; do
        case "$mode" in
        waf-off) what="\`waf serve\`, \`rules: []\`" ;;
        waf-ours) what="\`waf serve\`, \`rules: [rules/]\`, paranoia 1, block" ;;
        waf-crs) what="\`waf serve\`, \`rules: [crs-setup.conf, CRS 3.3.4 rules/]\`, paranoia 1, block" ;;
        nginx) what="nginx reverse proxy, no WAF" ;;
        nginx-modsec) what="nginx + ModSecurity 3 + CRS 3.3.4, paranoia 1, \`SecRuleEngine On\`" ;;
        esac
        # Cookie names may hold a "|" (x-ms-cpim-cache|...): not a column here.
        text="${logged[$mode]:-—}"
        printf '| %s | %s | %s s | %.1f MiB | %s |\n' "$mode" "$what" "${ready_s[$mode]}" \
            "$(awk -v k="${idle_rss[$mode]}" 'BEGIN { print k / 1024 }')" "${text//|/\\|}"
    done
)"
failed_line=""
((failures == 0)) || failed_line="**FAILED: $failures run(s) had non-2xx responses or socket errors; these figures are not valid.**"

echo
printf 'waf load test, %s: %s\n\n%s\n\n%s\n\n%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$setting" "$table" "$targets" "$modes_table"
[[ -z "$failed_line" ]] || printf '\n%s\n' "$failed_line"

# --- The report -----------------------------------------------------------------------------
if [[ -n "$out" ]]; then
    pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "not installed"; }
    commit="$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
    dirty=""
    if [[ -n "$(git -C "$repo" status --porcelain -- waf-core waf-proxy rules Cargo.lock 2>/dev/null)" ]]; then
        dirty=" (the working tree had uncommitted changes under waf-core/, waf-proxy/ or rules/)"
    fi
    os="$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
    [[ ! -f /etc/debian_version ]] || os+=" (debian_version $(cat /etc/debian_version))"
    {
        echo "# Benchmarks"
        echo
        echo "The load test of issue 6: our proxy with the WAF off, with our ruleset and with the OWASP CRS"
        echo "3.3.4, against plain nginx and the peer, nginx + ModSecurity 3 + CRS 3.3.4, on loopback. How"
        echo "it works, and what each mode is configured with: [benches/load/README.md](benches/load/README.md)."
        echo
        echo "- **Date:** $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "- **Command:** \`$command_line\`"
        echo "- **Load:** $setting. Every request is a clean sign-in request; every response had to be a"
        echo "  2xx, but for the blocks a WAF logged, which are its false positives (counted in the table)."
        echo
        echo "## Machine"
        echo
        echo "| | |"
        echo "|---|---|"
        echo "| CPUs (\`nproc\`) | $(nproc) |"
        echo "| CPU | $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo) |"
        echo "| memory | $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) |"
        echo "| kernel | $(uname -r) |"
        echo "| OS | $os |"
        echo "| load average at the start | $(cut -d' ' -f1-3 /proc/loadavg) (a shared machine: other work ran meanwhile) |"
        echo "| nginx | $("$nginx_bin" -v 2>&1 | sed 's|^nginx version: ||') (package $(pkg_version nginx)) |"
        echo "| libmodsecurity3 | $(pkg_version libmodsecurity3) |"
        echo "| libnginx-mod-http-modsecurity | $(pkg_version libnginx-mod-http-modsecurity) |"
        echo "| modsecurity-crs | $(pkg_version modsecurity-crs) |"
        echo "| wrk | $(pkg_version wrk) |"
        echo "| waf | commit $commit$dirty; binary \`${waf#"$repo"/}\` built $(date -u -r "$waf" '+%Y-%m-%d %H:%M UTC') |"
        echo
        echo "## Results"
        echo
        printf '%s\n' "$table"
        [[ -z "$failed_line" ]] || printf '\n%s\n' "$failed_line"
        echo
        echo "## Targets (issue 6)"
        echo
        echo "Ratios of requests/s measured in this run; \"met\" when both requests meet the goal."
        echo
        printf '%s\n' "$targets"
        echo
        echo "## The modes"
        echo
        echo "*Ready after*: from start to listening (rules loaded and compiled). *RSS idle*: resident size"
        echo "once started, before any load. *Logged*: what the WAF's audit log (ours) or nginx's error"
        echo "log (ModSecurity's warnings and blocks, \`info\` level) recorded during the clean load;"
        echo "every block there is a false positive, and names the rule and the field it matched."
        echo
        printf '%s\n' "$modes_table"
        echo
        echo "## How to read it"
        echo
        echo "- **Quote the ratios, not the absolute figures.** The two cores of this machine are shared"
        echo "  with other work (builds, a fuzzer), and wrk and the origin run on them too; absolute"
        echo "  requests/s move with all of that. Every ratio divides two figures measured in the same"
        echo "  run, with the modes interleaved in every round, so a slow patch hits all of them."
        echo "- **× waf-off** is a mode's median requests/s divided by our WAF-off proxy's, for the same"
        echo "  request: the cost of inspection on top of proxying. The targets divide the same way."
        echo "- **p50 and p99** come from a closed loop (wrk keeps $connections requests in flight), so p50"
        echo "  is mostly queueing, about connections ÷ requests/s; compare p99 with p50 for tails."
        echo "- **False positives** are clean requests a WAF blocked (403), out of all the requests of"
        echo "  the measured runs, with the rules and fields that did it in the table of modes. The"
        echo "  values that change per sign-in are random (as in real traffic), so rare matches come and"
        echo "  go between runs; a blocked request skips the origin, which at these rates does not move"
        echo "  the figures."
        echo "- **Inspection** is the engine's mean time per request in our proxy, read from its own"
        echo "  histogram (\`waf_inspection_duration_seconds\` on the admin port) before and after each"
        echo "  run, median over the rounds; in brackets, that time × requests/s ÷ proxy threads: the"
        echo "  share of the proxy's time that went to inspection. The rest is proxying, which waf-off"
        echo "  measures alone."
        echo "- **RSS under load** is the largest resident size sampled (every 0.25 s) while wrk ran:"
        echo "  the proxy's one process, or nginx's master plus workers summed (which counts the pages"
        echo "  they share twice, so it overstates nginx a little)."
    } >"$out"
    echo "run.sh: wrote $out" >&2
fi
if ((failures)); then
    die "$failures run(s) had non-2xx responses or socket errors (details above)"
fi
