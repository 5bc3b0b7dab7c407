# Shared shell helpers, sourced by scripts/demo, scripts/package-check, scripts/runtime-check,
# scripts/bench (through bash: `bash scripts/lib.sh FUNCTION ARGS...`) and
# packaging/measure-profile: the root policy, apt installs, a free loopback port, a moto server
# started and waited for, a secret seeded into it, a throwaway CA, and EXIT cleanup that
# outlives the caller's functions. Everything listens on 127.0.0.1 only.
# shellcheck shell=bash

LIB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# on_exit CMD: run CMD when the script exits (commands accumulate; globals, so a trap set inside
# a function never reads locals that are gone by then).
LIB_ON_EXIT=()
on_exit() {
  LIB_ON_EXIT+=("$1")
  trap 'for c in "${LIB_ON_EXIT[@]}"; do eval "$c" || true; done' EXIT
}

# need_root STAGE WHY: the one root policy. Without root a stage is skipped with one line saying
# so (exit 0), except under CI=true, where a check that did not run is a failure (exit 1).
need_root() {
  [ "$(id -u)" = 0 ] && return 0
  if [ "${CI:-}" = true ]; then
    printf '%s: FAIL: needs root (%s), and CI=true forbids skipping\n' "$1" "$2" >&2
    exit 1
  fi
  printf '%s: skipped: needs root (%s)\n' "$1" "$2"
  exit 0
}

# need_apt COMMAND PACKAGE: installs PACKAGE with apt-get when COMMAND is missing (one
# `apt-get update` per script run, only when something is installed).
LIB_APT_UPDATED=
need_apt() {
  command -v "$1" >/dev/null && return
  if [ -z "$LIB_APT_UPDATED" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    LIB_APT_UPDATED=1
  fi
  echo "installing $2 (for $1)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# make_ca DIR: a throwaway CA (DIR/ca.crt) and a server certificate for 127.0.0.1
# (DIR/server.crt, DIR/server.key), valid for a day.
make_ca() {
  local dir=$1
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=secret-exec-test-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$dir/ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 1 -extfile "$dir/ext" -out "$dir/server.crt" 2>/dev/null
}

# moto_start [CA_DIR]: starts moto_server on a free loopback port (TLS with CA_DIR's server
# certificate when given) and waits until it answers. Sets MOTO_PID and MOTO_URL; stops it at
# exit unless MOTO_KEEP=1 (a caller in another language stops it by PID).
moto_start() {
  local ca=${1:-} port log tls=() curl_ca=() scheme=http
  port=$(free_port)
  log=$(mktemp)
  if [ -n "$ca" ]; then
    tls=(-c "$ca/server.crt" -k "$ca/server.key")
    curl_ca=(--cacert "$ca/ca.crt")
    scheme=https
  fi
  "$LIB_ROOT/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" "${tls[@]}" >"$log" 2>&1 &
  MOTO_PID=$!
  MOTO_URL="$scheme://127.0.0.1:$port"
  MOTO_CURL_CA=("${curl_ca[@]}")
  [ "${MOTO_KEEP:-}" = 1 ] || on_exit "kill $MOTO_PID 2>/dev/null"
  for _ in $(seq 600); do
    if curl -fs "${curl_ca[@]}" "$MOTO_URL/moto-api/data.json" -o /dev/null; then
      rm -f "$log"
      return 0
    fi
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then
      echo "moto_server exited: $(tail -n 3 "$log")" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "moto_server never answered on $MOTO_URL" >&2
  return 1
}

# moto_seed NAME SECRET_STRING [URL [REGION]]: CreateSecret in REGION (default us-east-1) of
# the moto at URL (default $MOTO_URL). moto does not check signatures, so a dummy Authorization
# header will do.
moto_seed() {
  local name=$1 value=$2 url=${3:-$MOTO_URL} region=${4:-us-east-1} body
  body=$(python3 -c 'import json,sys; print(json.dumps({"Name": sys.argv[1], "SecretString": sys.argv[2]}))' "$name" "$value")
  curl -fs "${MOTO_CURL_CA[@]}" "$url/" -o /dev/null \
    -H 'X-Amz-Target: secretsmanager.CreateSecret' -H 'Content-Type: application/x-amz-json-1.1' \
    -H "Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/$region/secretsmanager/aws4_request, SignedHeaders=host, Signature=0" \
    -d "$body"
}

# The size budget of a static binary in bytes (docs/performance.md): a launcher in every image
# layer and init container stays small; growth past it is a decision, not an accident.
STATIC_SIZE_CAP=6200000

# The static (musl) targets a release ships, with the Debian architecture of each.
STATIC_TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
deb_arch() { case $1 in x86_64*) echo amd64 ;; aarch64*) echo arm64 ;; esac; }

# need_static_toolchain TARGET: the rustup target and the C compiler ring needs for it: Debian's
# musl-gcc for x86_64, Debian's aarch64 cross gcc for aarch64 (Rust's musl targets bring their
# own musl, so only a compiler and linker for the CPU are needed), plus qemu-user-static to run
# an aarch64 binary here. Root (apt-get) when something is missing.
need_static_toolchain() {
  case $1 in
    x86_64-unknown-linux-musl) need_apt musl-gcc musl-tools ;;
    aarch64-unknown-linux-musl)
      need_apt aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
      need_apt qemu-aarch64-static qemu-user-static ;;
  esac
  need_apt readelf binutils
  rustup target list --installed | grep -qx "$1" || rustup target add "$1"
}

# build_static TARGET: the static release binary for TARGET (cargo build --locked --release);
# prints its path. Fails when it asks for a dynamic loader or exceeds STATIC_SIZE_CAP bytes.
build_static() {
  local target=$1 bin
  bin=$LIB_ROOT/target/$target/release/secret-exec
  case $target in
    x86_64-unknown-linux-musl)
      CC_x86_64_unknown_linux_musl=musl-gcc cargo build --locked --release --quiet --target "$target" ;;
    aarch64-unknown-linux-musl)
      CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc \
        CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc \
        cargo build --locked --release --quiet --target "$target" ;;
    *) echo "build_static: unknown target $target" >&2; return 1 ;;
  esac
  check_static "$bin" >&2 || return 1
  printf '%s\n' "$bin"
}

# check_static BIN: no dynamic loader, within the STATIC_SIZE_CAP budget (docs/performance.md).
check_static() {
  local bin=$1 size
  if readelf -lW "$bin" | grep -q 'INTERP'; then
    echo "$bin asks for a dynamic loader; it must be static" >&2
    return 1
  fi
  size=$(stat -c %s "$bin")
  if [ "$size" -gt "$STATIC_SIZE_CAP" ]; then
    echo "$bin is $size bytes, over the $STATIC_SIZE_CAP-byte budget" >&2
    return 1
  fi
  echo "static binary: $size bytes ($bin)"
}

# Run as a program (`bash scripts/lib.sh FUNCTION ARGS...`, how scripts/bench calls it): runs
# one helper and exits, e.g. `free_port`, `make_ca DIR`, or `MOTO_KEEP=1 moto_start` (prints
# "PID URL"; the caller stops it by PID).
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  fn=$1
  shift
  case $fn in
    moto_start) MOTO_KEEP=1 moto_start "$@"; echo "$MOTO_PID $MOTO_URL" ;;
    *) "$fn" "$@" ;;
  esac
fi
