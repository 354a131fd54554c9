#!/usr/bin/env bash
# Issue 13's side-by-side figures (benchmarks, not tests): `edgesim serve` as users run it (--log-file, --events,
# the default console logging to a file) against the no-sink Edge (`examples/bench_edge`) and a bare rustls echo
# (`examples/tls_echo`), all driven by `edgesim load` over loopback, release build, server pinned to CPU 0 and
# the generator to CPU 1. Every throughput figure is per server CPU-second (answers / CPU time the server process
# used during the run, all its threads: the sink writer included), so a busy machine lowers the rates less.
#
#   (a) INVITE -> 504 (ms-diagnostics 1009), CONNS persistent connections x WINDOW in flight: serve vs bench_edge
#   (b) a new mutual-TLS connection + one INVITE -> 504 per request (HS_CONNS workers): serve vs the echo, ECDSA
#       P-256 and RSA-2048 (server, CA and client certificates all of that key type)
#   (c) p50/p99 of serve with every sink on, paced at half of its (a) rate
#   (d) serve's resident memory holding IDLE_CONNS idle TLS connections
#
# Usage: bash benches/run-serve-bench.sh            prints the table (also in $OUT/table.md)
# Knobs: DUR=10 CONNS=4 WINDOW=64 HS_CONNS=64 IDLE_CONNS=10000 PIN=1 OUT=target/serve-bench
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${DUR:-10}
CONNS=${CONNS:-4}
WINDOW=${WINDOW:-64}
HS_CONNS=${HS_CONNS:-64}
IDLE_CONNS=${IDLE_CONNS:-10000}
PIN=${PIN:-1}
OUT=${OUT:-target/serve-bench}

rm -rf "$OUT"
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo build --release --bin edgesim --example bench_edge --example tls_echo >&2
BIN=target/release/edgesim
EX=target/release/examples
SRV_PIN=()
GEN_PIN=()
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ]; then
    SRV_PIN=(taskset -c 0)
    GEN_PIN=(taskset -c 1)
fi

# The lab PKI per key type: CA, the Edge's certificate (what serve loads from its data directory) and the
# peer's client certificate.
for k in ecdsa rsa; do
    d="$OUT/pki-$k"
    "$BIN" certs ca --out "$d" --key "$k" --cn "edgesim bench $k CA" >/dev/null
    "$BIN" certs issue --ca "$d" --out "$d" --name edge --cn sip.skype.lab --key "$k" >/dev/null
    "$BIN" certs issue --ca "$d" --out "$d" --name vcse --cn vcse.steven.lab --key "$k" >/dev/null
done
# Limits opened for load, as bench_edge has them; the DNS zone that makes every INVITE a 504/1009.
# TLS 1.2 and 1.3 as the echo server and the earlier figures: the default profile (sfb2015) offers 1.2 only.
cat >"$OUT/serve.toml" <<'EOF'
[tls]
versions = ["1.2", "1.3"]

[limits]
max_connections = 20000
max_requests_per_sec = 1000000
idle_timeout_ms = 3600000
header_timeout_ms = 10000
handshake_timeout_ms = 10000

[[dns.records]]
type = "SRV"
name = "_sipfederationtls._tcp.acano.steven.lab"
priority = 10
weight = 10
port = 5061
target = "vcse.steven.lab"
EOF

SPID=
PORT=
CLIENT=()
start() { # name: serve-ecdsa | serve-rsa | edge | echo-ecdsa | echo-rsa
    local log="$OUT/$1.stdout"
    case $1 in
    serve-*)
        local k=${1#serve-}
        rm -f "$OUT/edge.log" "$OUT/events.jsonl"
        "${SRV_PIN[@]}" "$BIN" serve --listen 127.0.0.1:0 --serve-dns 127.0.0.1:0 --config "$OUT/serve.toml" \
            --data-dir "$OUT/pki-$k" --log-file "$OUT/edge.log" --events "$OUT/events.jsonl" \
            >"$log" 2>"$OUT/$1.console" &
        CLIENT=(--cert "$OUT/pki-$k/vcse.chain.pem" --key "$OUT/pki-$k/vcse.key")
        ;;
    edge)
        "${SRV_PIN[@]}" "$EX/bench_edge" 127.0.0.1:0 "$OUT/ca-edge" >"$log" 2>&1 &
        CLIENT=(--lab-cert-cn vcse.steven.lab --ca-dir "$OUT/ca-edge")
        ;;
    echo-*)
        "${SRV_PIN[@]}" "$EX/tls_echo" 127.0.0.1:0 "${1#echo-}" >"$log" 2>&1 &
        CLIENT=(--cert "$OUT/pki-${1#echo-}/vcse.chain.pem" --key "$OUT/pki-${1#echo-}/vcse.key")
        ;;
    esac
    SPID=$!
    for _ in $(seq 200); do
        PORT=$(sed -n 's/.*listening on \(tls \)\{0,1\}127\.0\.0\.1:\([0-9]*\).*/\2/p' "$log" 2>/dev/null | head -1 || true)
        [ -n "$PORT" ] && return 0
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    echo "$1 did not start: $(cat "$log" "$OUT/$1.console" 2>/dev/null)" >&2
    exit 1
}
stop() { # SIGTERM: serve drains its sinks and exits
    kill -TERM "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
}
trap stop EXIT
ticks() { awk '{ print $14 + $15 }' "/proc/$SPID/stat"; }
rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$SPID/status"; }
CPU_S=
load() { # name, load args...: $OUT/name.json, CPU_S = server CPU seconds over the run
    local name=$1
    shift
    local s0
    s0=$(ticks)
    "${GEN_PIN[@]}" "$BIN" load --target "127.0.0.1:$PORT" --server-name sip.skype.lab "${CLIENT[@]}" --json "$@" \
        >"$OUT/$name.json" || true
    CPU_S=$(awk -v a="$s0" -v b="$(ticks)" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }')
    echo "$CPU_S" >"$OUT/$name.cpu"
}
f() { jq -r "$2" "$OUT/$1.json"; }
per_cpu() { awk -v n="$(f "$1" .answered)" -v c="$(cat "$OUT/$1.cpu")" 'BEGIN { printf "%.0f", n / c }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
errors() { f "$1" '[.errors[]] | add // 0'; }

# (a) and, for serve, (c) in the same process.
for s in edge serve-ecdsa; do
    start $s
    load "warm-$s" --connections "$CONNS" --window "$WINDOW" --requests 2000
    load "a-$s" --connections "$CONNS" --window "$WINDOW" --duration "$DUR"
    if [ $s = serve-ecdsa ]; then
        half=$(awk -v r="$(f a-$s .rate)" 'BEGIN { printf "%.0f", r / 2 }')
        load "c-$s" --connections "$CONNS" --window "$WINDOW" --rate "$half" --duration "$DUR"
    fi
    stop
    if [ $s = serve-ecdsa ]; then
        # Not one record lost: every answer of the three runs is in both files after SIGTERM.
        answered=$(jq -s 'map(.answered) | add' "$OUT/warm-$s.json" "$OUT/a-$s.json" "$OUT/c-$s.json")
        records=$(grep -c '^TL ' "$OUT/edge.log" || true)
        events=$(wc -l <"$OUT/events.jsonl")
        console=$(grep -c ' 504 INVITE from ' "$OUT/$s.console" || true)
    fi
done
# (b): a new mutual-TLS connection per request.
for s in echo-ecdsa serve-ecdsa echo-rsa serve-rsa; do
    start $s
    load "warm-b-$s" --connections "$HS_CONNS" --new-connection-per-request --requests 500
    load "b-$s" --connections "$HS_CONNS" --new-connection-per-request --duration "$DUR"
    stop
done
# (d): a fresh serve holding IDLE_CONNS idle connections.
start serve-ecdsa
before=$(rss_mb)
"${GEN_PIN[@]}" "$BIN" load --target "127.0.0.1:$PORT" --server-name sip.skype.lab "${CLIENT[@]}" --json \
    --connections "$IDLE_CONNS" --requests 0 --hold 20 --timeout-ms 120000 >"$OUT/d-serve.json" &
gpid=$!
peak_rss=0
peak_conns=0
while kill -0 $gpid 2>/dev/null; do
    n=$(ss -Htn state established "( sport = :$PORT )" | wc -l)
    r=$(rss_mb)
    [ "$n" -ge "$peak_conns" ] && peak_conns=$n
    peak_rss=$(awk -v a="$peak_rss" -v b="$r" 'BEGIN { print (b > a) ? b : a }')
    sleep 1
done
wait $gpid || true
stop

a_edge=$(per_cpu a-edge)
a_serve=$(per_cpu a-serve-ecdsa)
{
    echo "edgesim serve benchmarks $(date -u +%FT%TZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), pinning ${PIN}, DUR=${DUR}s"
    echo
    echo "| figure | no-sink Edge / echo | serve as users run it | ratio | goal |"
    echo "|---|---|---|---|---|"
    echo "| (a) INVITE→504, $CONNS × $WINDOW, per server CPU-s | bench_edge $a_edge /CPU-s, p99 $(f a-edge .latency_ms.p99) ms ($(f a-edge .rate | xargs printf '%.0f')/s, $(cat "$OUT/a-edge.cpu") CPU-s) | $a_serve /CPU-s, p99 $(f a-serve-ecdsa .latency_ms.p99) ms ($(f a-serve-ecdsa .rate | xargs printf '%.0f')/s, $(cat "$OUT/a-serve-ecdsa.cpu") CPU-s) | $(ratio "$a_serve" "$a_edge") | serve ≥ 50 000 and ≥ 0.8×; bench_edge ≥ 100 000 |"
    for k in ecdsa rsa; do
        e=$(per_cpu "b-echo-$k")
        v=$(per_cpu "b-serve-$k")
        echo "| (b) new mutual-TLS connection + decision, $k, $HS_CONNS workers | echo $e /CPU-s ($(f "b-echo-$k" .rate | xargs printf '%.0f')/s) | $v /CPU-s ($(f "b-serve-$k" .rate | xargs printf '%.0f')/s, errors $(errors "b-serve-$k")) | $(ratio "$v" "$e") | ecdsa ≥ 0.9× the echo |"
    done
    echo "| (c) paced at half of (a): $(f c-serve-ecdsa .rate | xargs printf '%.0f')/s, every sink on | – | p50 $(f c-serve-ecdsa .latency_ms.p50) ms, p99 $(f c-serve-ecdsa .latency_ms.p99) ms | – | p99 ≤ 5 ms |"
    echo "| (d) $peak_conns idle TLS connections | – | RSS $peak_rss MB (idle before: $before MB) | – | ≤ 200 MB |"
    echo
    echo "Not one record lost: serve answered $answered INVITEs over (a) and (c) with their warm-up, and after SIGTERM its log file holds $records records and its events file $events events; its console has $console decision lines."
} | tee "$OUT/table.md"
