#!/usr/bin/env bash
# edgesim benchmarks (not tests): the Edge (`examples/bench_edge.rs`, a real `edge::serve` with the embedded DNS
# server) and a bare rustls TLS echo server (`examples/tls_echo.rs`, same TLS configuration, no SIP), both driven
# by `edgesim load` over loopback, release build, server and generator side by side on this machine.
#
#   (a) INVITE -> 504 (ms-diagnostics 1009) decisions/s over persistent TLS connections, SRV answer cached
#   (b) new mutual-TLS connection + one decision, per second
#   (c) p99 latency at half of (a)'s peak rate (the echo server is driven at the same absolute rate)
#   (d) server resident memory with IDLE_CONNS idle TLS connections held
#   (e) server resident memory over a soak at half the peak rate
#
# Usage: bash benches/run.sh [a b c d e]      (default: all; b/c/d/e need nothing from the others but c uses
#                                              (a)'s peak when it ran, else RATE)
# Knobs (environment): DUR=10 (s per throughput run), SOAK_SECS=180, IDLE_CONNS=10000, CONNS=4, WINDOW=64,
#   HS_CONNS=64 (workers for b), PIN=1 (server on CPU 0, generator on CPU 1), OUT=target/bench-results,
#   PROFILE=release (debug only to smoke-test this script).
# Results: one JSON report per run in $OUT, RSS samples as .tsv, and $OUT/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${DUR:-10}
SOAK_SECS=${SOAK_SECS:-180}
IDLE_CONNS=${IDLE_CONNS:-10000}
CONNS=${CONNS:-4}
WINDOW=${WINDOW:-64}
HS_CONNS=${HS_CONNS:-64}
PIN=${PIN:-1}
OUT=${OUT:-target/bench-results}
PROFILE=${PROFILE:-release}
WHICH=${*:-a b c d e}

mkdir -p "$OUT"
# 10 000 connections need 10 000 descriptors on each side (plus a few).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE_CONNS + 100)) ]; then
    echo "warning: ulimit -n is $(ulimit -n): (d) cannot hold $IDLE_CONNS connections" >&2
fi

if [ "$PROFILE" = release ]; then
    cargo build --release --bin edgesim --example bench_edge --example tls_echo
else
    cargo build --bin edgesim --example bench_edge --example tls_echo
fi
DIR=target/$PROFILE
BIN=$DIR/edgesim
SRV_PIN=()
GEN_PIN=()
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ]; then
    SRV_PIN=(taskset -c 0)
    GEN_PIN=(taskset -c 1)
fi

SPID=
PORT=
CA_DIR="$OUT/ca"
start_server() { # edge | echo
    local log="$OUT/server-$1.log"
    # The embedded DNS server binds TCP on the port the OS gave its UDP socket, which can collide with a
    # TIME_WAIT socket left by a handshake run: try again.
    for _attempt in 1 2 3 4 5; do
        case $1 in
        edge) "${SRV_PIN[@]}" "$DIR/examples/bench_edge" 127.0.0.1:0 "$CA_DIR" >"$log" 2>&1 & ;;
        echo) "${SRV_PIN[@]}" "$DIR/examples/tls_echo" 127.0.0.1:0 >"$log" 2>&1 & ;;
        esac
        SPID=$!
        for _ in $(seq 100); do
            PORT=$(sed -n 's/^listening on 127.0.0.1://p' "$log" 2>/dev/null || true)
            [ -n "$PORT" ] && return 0
            kill -0 "$SPID" 2>/dev/null || break
            sleep 0.1
        done
        wait "$SPID" 2>/dev/null || true
    done
    echo "server $1 did not start: $(cat "$log")" >&2
    exit 1
}
stop_server() {
    kill "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
}
trap stop_server EXIT
rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$SPID/status"; }
established() { ss -Htn state established "( sport = :$PORT )" | wc -l; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
SRV_CPU=
GEN_CPU=
gen() { # name, load args...; sets SRV_CPU and GEN_CPU (% of one CPU over the run)
    local name=$1
    shift
    local t0 s0
    t0=$(date +%s.%N)
    s0=$(ticks "$SPID")
    /usr/bin/time -f "%P" -o "$OUT/$name.gencpu" "${GEN_PIN[@]}" "$BIN" load --target "127.0.0.1:$PORT" \
        --server-name sip.skype.lab --lab-cert-cn vcse.steven.lab --ca-dir "$CA_DIR" --json "$@" \
        >"$OUT/$name.json" || true
    SRV_CPU=$(awk -v a="$s0" -v b="$(ticks "$SPID")" -v t0="$t0" -v t1="$(date +%s.%N)" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.0f%%", (b - a) / hz / (t1 - t0) * 100 }')
    GEN_CPU=$(tail -1 "$OUT/$name.gencpu")
}
field() { jq -r "$2" "$OUT/$1.json"; }
summary() { echo "$*" | tee -a "$OUT/summary.md"; }

: >"$OUT/summary.md"
summary "# edgesim benchmarks $(date -u +%FT%TZ), $(nproc) CPUs, pinning: ${PIN}, DUR=${DUR}s"
summary ""
summary "| run | server | result | p50 ms | p99 ms | errors | CPU server / generator |"
summary "|---|---|---|---|---|---|---|"
row() { # run server name metric-jq unit
    summary "| $1 | $2 | $(field "$3" "$4" | xargs printf '%.0f') $5 | $(field "$3" .latency_ms.p50) | $(field "$3" .latency_ms.p99) | $(field "$3" '[.errors[]] | add // 0') | $SRV_CPU / $GEN_CPU |"
}

PEAK_EDGE=${RATE:-}
for kind in edge echo; do
    start_server $kind
    # Warm-up: first handshakes, the SRV answer into the Edge's cache.
    gen "warmup-$kind" --connections "$CONNS" --window "$WINDOW" --requests 2000
    if [[ " $WHICH " == *" a "* ]]; then
        gen "a-$kind" --connections "$CONNS" --window "$WINDOW" --duration "$DUR"
        row a $kind "a-$kind" .rate "answers/s"
        [ $kind = edge ] && PEAK_EDGE=$(field a-edge .rate)
    fi
    if [[ " $WHICH " == *" b "* ]]; then
        gen "b-$kind" --connections "$HS_CONNS" --new-connection-per-request --duration "$DUR"
        row b $kind "b-$kind" .rate "conn+answer/s"
    fi
    if [[ " $WHICH " == *" c "* ]] && [ -n "$PEAK_EDGE" ]; then
        half=$(awk -v p="$PEAK_EDGE" 'BEGIN { printf "%.0f", p / 2 }')
        gen "c-$kind" --connections "$CONNS" --window "$WINDOW" --rate "$half" --duration "$DUR"
        row c $kind "c-$kind" .rate "answers/s (target $half/s)"
    fi
    if [[ " $WHICH " == *" d "* ]]; then
        # A fresh server: memory is measured from its start, not from the high-water mark of (a)-(c).
        stop_server
        start_server $kind
        before=$(rss_mb)
        "${GEN_PIN[@]}" "$BIN" load --target "127.0.0.1:$PORT" --server-name sip.skype.lab \
            --lab-cert-cn vcse.steven.lab --ca-dir "$CA_DIR" --json --connections "$IDLE_CONNS" \
            --requests 0 --hold 20 --timeout-ms 120000 >"$OUT/d-$kind.json" &
        gpid=$!
        peak_conns=0
        peak_rss=0
        echo -e "t_s\testablished\trss_mb" >"$OUT/d-$kind.tsv"
        t=0
        while kill -0 $gpid 2>/dev/null; do
            n=$(established)
            r=$(rss_mb)
            echo -e "$t\t$n\t$r" >>"$OUT/d-$kind.tsv"
            if [ "$n" -ge "$peak_conns" ]; then peak_conns=$n; fi
            peak_rss=$(awk -v a="$peak_rss" -v b="$r" 'BEGIN { print (b > a) ? b : a }')
            sleep 1
            t=$((t + 1))
        done
        wait $gpid || true
        summary "| d | $kind | $peak_conns idle TLS connections: server RSS $peak_rss MB (idle before: $before MB) | | | $(field "d-$kind" '[.errors[]] | add // 0') | |"
    fi
    if [[ " $WHICH " == *" e "* ]] && [ $kind = edge ]; then
        stop_server
        start_server $kind
        gen "warmup-e-$kind" --connections "$CONNS" --window "$WINDOW" --requests 2000
        soak_rate=$(awk -v p="${PEAK_EDGE:-10000}" 'BEGIN { printf "%.0f", p / 2 }')
        gen_bg_start=$(date +%s)
        "${GEN_PIN[@]}" "$BIN" load --target "127.0.0.1:$PORT" --server-name sip.skype.lab \
            --lab-cert-cn vcse.steven.lab --ca-dir "$CA_DIR" --json --connections "$CONNS" \
            --window "$WINDOW" --rate "$soak_rate" --duration "$SOAK_SECS" >"$OUT/e-$kind.json" &
        gpid=$!
        echo -e "t_s\trss_mb" >"$OUT/e-$kind.tsv"
        while kill -0 $gpid 2>/dev/null; do
            echo -e "$(($(date +%s) - gen_bg_start))\t$(rss_mb)" >>"$OUT/e-$kind.tsv"
            sleep 5
        done
        wait $gpid || true
        first=$(awk 'NR == 3 { print $2 }' "$OUT/e-$kind.tsv")
        last=$(tail -1 "$OUT/e-$kind.tsv" | cut -f2)
        max=$(awk 'NR > 1 && $2 > m { m = $2 } END { print m }' "$OUT/e-$kind.tsv")
        summary "| e | $kind | soak ${SOAK_SECS}s at $soak_rate/s: RSS at 10 s $first MB, at end $last MB, max $max MB; $(field "e-$kind" .answered) answers | $(field "e-$kind" .latency_ms.p50) | $(field "e-$kind" .latency_ms.p99) | $(field "e-$kind" '[.errors[]] | add // 0') | |"
    fi
    stop_server
done
echo "results in $OUT (summary.md, one JSON per run, RSS samples as .tsv)"
