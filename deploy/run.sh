#!/usr/bin/env bash
# The reference deployment (issue #36), one command: N `assistant serve` replicas behind haproxy, sharing one
# PostgreSQL database (threads, checkpoints, upload jobs) and one index directory. Everything listens on loopback.
#
#   bash deploy/run.sh [REPLICAS]          (default 2; Ctrl-C or SIGTERM stops everything)
#
# ASSISTANT_STORAGE__URL   an existing PostgreSQL database; unset: a local cluster is started (Debian's postgresql-15)
# DEPLOY_PORT              haproxy's port (default 8000); replicas take the next REPLICAS ports, PostgreSQL the one after,
#                          shared tiers the two after that
# DEPLOY_STATS_PORT        haproxy's statistics page (default DEPLOY_PORT + 100)
# DEPLOY_DIR               logs, the haproxy config and the shared index (default: <cache dir>/deploy)
# Needs `bash scripts/install.sh postgres` (or any extras including it) first. A replica that exits is restarted.
set -euo pipefail
cd "$(dirname "$0")/.."
replicas=${1:-2}
port=${DEPLOY_PORT:-8000}
stats_port=${DEPLOY_STATS_PORT:-$((port + 100))}
cache=${ASSISTANT_CACHE_DIR:-$HOME/.cache/small-first-assistant}
state=${DEPLOY_DIR:-$cache/deploy}
mkdir -p "$state"
[ -x .venv/bin/assistant ] || { echo "error: run 'bash scripts/install.sh postgres' first" >&2; exit 1; }

need=()
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
if [ -z "${ASSISTANT_STORAGE__URL:-}" ] && ! compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; then
  need+=(postgresql-15)
fi
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${need[*]} from Debian's packages" >&2
  $sudo apt-get install -y -q "${need[@]}" >/dev/null \
    || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q "${need[@]}" >/dev/null; }
fi

pids=()
pg_data=""
as_pg=()
stop_all() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$pg_data" ]; then "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -m fast stop >/dev/null 2>&1 || true; fi
}
trap stop_all EXIT
trap 'exit 0' INT TERM

if [ -z "${ASSISTANT_STORAGE__URL:-}" ]; then
  pg_bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -1)")
  pg_port=$((port + replicas + 1))
  if [ "$(id -u)" -eq 0 ]; then  # PostgreSQL refuses to run as root: the cluster belongs to Debian's postgres user
    as_pg=(runuser -u postgres --)
    pg_root=/var/lib/postgresql/small-first-assistant
  else
    pg_root=$state/postgres
  fi
  pg_data=$pg_root/data
  if [ ! -f "$pg_data/PG_VERSION" ]; then
    mkdir -p "$pg_root"
    [ "$(id -u)" -ne 0 ] || chown postgres "$pg_root"
    "${as_pg[@]}" "$pg_bin/initdb" -D "$pg_data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_root/postgres.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -c port=$pg_port -c unix_socket_directories=$pg_root" >/dev/null
  export ASSISTANT_STORAGE__URL="postgresql://postgres@127.0.0.1:$pg_port/postgres"
  echo "PostgreSQL: a local cluster in $pg_data on port $pg_port" >&2
fi
export ASSISTANT_RETRIEVAL__INDEX_DIR=${ASSISTANT_RETRIEVAL__INDEX_DIR:-$state/index}

tiers=${DEPLOY_TIERS:-own}
tiers_port=$((port + replicas + 2))
tiers_pid=""
start_tiers() {  # the shared tier servers, on fixed ports so that a restart keeps the replicas' endpoints
  .venv/bin/assistant models serve small large --port "$tiers_port" --env-file "$state/tiers.env" \
    >>"$state/tiers.log" 2>&1 &
  tiers_pid=$!
  pids+=("$tiers_pid")
}
case "$tiers" in
  own) ;;
  shared)
    rm -f "$state/tiers.env"
    start_tiers
    for _ in $(seq 1 1200); do
      [ -f "$state/tiers.env" ] && break
      kill -0 "$tiers_pid" 2>/dev/null || { echo "error: the tier servers did not start; see $state/tiers.log" >&2; exit 1; }
      sleep 0.5
    done
    [ -f "$state/tiers.env" ] || { echo "error: the tier servers never answered; see $state/tiers.log" >&2; exit 1; }
    set -a; . "$state/tiers.env"; set +a
    echo "tiers: one llama-server each for small and large on ports $tiers_port-$((tiers_port + 1))," \
      "shared by the replicas" >&2
    ;;
  *) echo "error: DEPLOY_TIERS must be own or shared, not '$tiers'" >&2; exit 1 ;;
esac

start_replica() {  # start_replica NUMBER: the replica's process id in $replica_pid
  .venv/bin/assistant serve --port $((port + $1)) >>"$state/replica-$1.log" 2>&1 &
  replica_pid=$!
}
sed -e "s/@PORT@/$port/" -e "s/@STATS_PORT@/$stats_port/" deploy/haproxy.cfg >"$state/haproxy.cfg"
declare -A replica_pids
for number in $(seq 1 "$replicas"); do
  echo "    server replica$number 127.0.0.1:$((port + number)) check" >>"$state/haproxy.cfg"
  start_replica "$number"
  replica_pids[$number]=$replica_pid
  pids+=("$replica_pid")
done
haproxy -f "$state/haproxy.cfg" -db >"$state/haproxy.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 600); do
  if curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1; then break; fi
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$port/health" >/dev/null \
  || { echo "error: no replica became healthy; see $state/replica-*.log" >&2; exit 1; }
echo "the deployment is ready: open http://127.0.0.1:$port/ ($replicas replicas, $tiers tiers, statistics on" \
  "http://127.0.0.1:$stats_port/, logs in $state)"

while true; do  # supervise: a replica that exited is started again (haproxy routes around it meanwhile)
  sleep 2
  if [ -n "$tiers_pid" ] && ! kill -0 "$tiers_pid" 2>/dev/null; then
    echo "the tier servers exited; starting them again" >&2
    start_tiers
  fi
  for number in "${!replica_pids[@]}"; do
    if ! kill -0 "${replica_pids[$number]}" 2>/dev/null; then
      echo "replica $number exited; starting it again" >&2
      start_replica "$number"
      replica_pids[$number]=$replica_pid
      pids+=("$replica_pid")
    fi
  done
done
