#!/usr/bin/env bash
# Installs what callgate's tests need when it is missing, and only then: safe to run again and again.
# Debian packages (as root, or with sudo) and the npm dependencies from package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the test suite uses, as "command:package" pairs (tests/support/tools.ts names the same
# tools: under CI=true a missing one fails the tests that need it).
APT_NEEDS=(
  "pocketsphinx_continuous:pocketsphinx"
  # The tenants' outage tests start and kill a Redis server of their own (the shared one at :6379 is
  # the machine's service).
  "redis-server:redis-server"
  # The media-anchor tests start their own rtpengine (userspace only, loopback; src/sip/rtpengine).
  "rtpengine:rtpengine-daemon"
  # The SIP tests drive calls with sipp and capture what the caller received with tcpdump (both run
  # only where drachtio-server is present, but cost little to have).
  "sipp:sip-tester"
  "tcpdump:tcpdump"
  # The web phone's end-to-end tests drive Debian's Chromium with playwright-core.
  "chromium:chromium"
  # ... and reach the WebRTC door through Debian's coturn (TURN REST credentials, loopback only).
  "turnserver:coturn"
  # A real softphone for the SIP door's interop test (issue 25): it registers, calls and is called
  # (tests/sip/baresip.test.ts; baresip-core holds the command and the modules the test loads).
  "baresip:baresip"
  # ... and a second, independent one (tests/sip/linphone.test.ts): Debian's linphone-cli (linphonec).
  "linphonec:linphone-cli"
  # The pcap writer's output is read back by Wireshark's dissectors.
  "tshark:tshark"
  # Fixture and soak audio tooling (npm run fixtures, bench:soak's caller voices).
  "flite:flite"
  "sox:sox"
  # bench:turns' callers speak with espeak-ng, a different engine from the agent's (flite).
  "espeak-ng:espeak-ng"
)
# docker/compose.yaml is validated with the Compose client (no engine needed): the `docker compose`
# plugin when present, else Debian's docker-compose.
if ! docker compose version >/dev/null 2>&1; then APT_NEEDS+=("docker-compose:docker-compose"); fi
# `npm start` (--run) needs only what the gateway runs with: offline STT, a Redis to start when none is
# configured, and rtpengine when the SIP door is configured (DRACHTIO_HOST, or CALLGATE_SIP=1, which
# starts drachtio-server too: its libraries below). `npm start -- --sip` cannot be seen from here (npm
# hands the arguments to the start script only); the gateway then says what is missing.
sip_here=$(printf '%s' "${CALLGATE_SIP:-}" | tr '[:upper:]' '[:lower:]')
case "$sip_here" in 1|true|yes) sip_here=1 ;; *) sip_here= ;; esac
if [ "${1:-}" = "--run" ]; then
  APT_NEEDS=("pocketsphinx_continuous:pocketsphinx")
  [ -n "${REDIS_URL:-}" ] || APT_NEEDS+=("redis-server:redis-server")
  if [ -n "${DRACHTIO_HOST:-}${DRACHTIO_PORT:-}${sip_here}" ] && [ -z "${RTPENGINE_NG_PORT:-}" ]; then APT_NEEDS+=("rtpengine:rtpengine-daemon"); fi
fi
# Debian packages that install data rather than a command, as "file:package" pairs.
APT_FILE_NEEDS=(
  "/usr/share/pocketsphinx/model/en-us/en-us.lm.bin:pocketsphinx-en-us"
)

missing=()
# drachtio-server is built outside this repository (../shared/bin on this project's machines, or
# DRACHTIO_BIN); the SIP tests run it, so the Debian libraries it links are installed when one is there.
# The same lookup as src/sip/drachtioServer.ts: beside this checkout, or beside the local
# checkout it was cloned from (CI runs a fresh clone elsewhere).
origin=$(git config --get remote.origin.url 2>/dev/null || true)
shared_drachtio=../shared/bin/drachtio
if [ ! -x "$shared_drachtio" ] && [ -n "$origin" ] && [ -d "${origin#file://}" ]; then shared_drachtio="${origin#file://}/../shared/bin/drachtio"; fi
DRACHTIO=${DRACHTIO_BIN:-$(command -v drachtio 2>/dev/null || echo "$shared_drachtio")}
if { [ "${1:-}" != "--run" ] || [ -n "$sip_here" ]; } && [ -x "$DRACHTIO" ] && ldd "$DRACHTIO" 2>/dev/null | grep -q 'not found'; then
  missing+=(libcurl4 libboost-thread1.74.0 libboost-log1.74.0 libboost-filesystem1.74.0 libgoogle-perftools4)
fi
for pair in "${APT_NEEDS[@]+"${APT_NEEDS[@]}"}"; do
  cmd=${pair%%:*}
  pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
for pair in "${APT_FILE_NEEDS[@]+"${APT_FILE_NEEDS[@]}"}"; do
  file=${pair%%:*}
  pkg=${pair#*:}
  [ -e "$file" ] || missing+=("$pkg")
done
# Quiet when there is nothing to do; one line per package installed. apt's own output goes to a log,
# printed only when the install fails.
LOG=${TMPDIR:-/tmp}/callgate-ensure-deps.log
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  : > "$LOG"
  # wireshark-common asks whether non-root users may capture: the default (no) is what the tests need.
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >>"$LOG" 2>&1; then
    echo "ensure-deps: apt-get install ${missing[*]} failed; its output:" >&2
    tail -n 40 "$LOG" >&2
    exit 1
  fi
  for pkg in "${missing[@]}"; do echo "ensure-deps: installed $pkg"; done
fi

# npm ci only when the lockfile changed since the last successful install (its hash is kept in node_modules).
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.callgate-lock-hash 2>/dev/null)" != "$lock_hash" ]; then
  # onnxruntime-node (Silero VAD) ships its CPU binaries in the package; its postinstall would only
  # try to download GPU files from outside the npm registry. Offline that fails, and npm then
  # silently leaves the optional package out.
  export ONNXRUNTIME_NODE_INSTALL=skip
  # --loglevel=warn: the project's .npmrc silences npm, and this log must hold its reasons when it fails.
  if ! npm ci --no-audit --no-fund --loglevel=warn >>"$LOG" 2>&1; then
    echo "ensure-deps: npm ci failed; its output:" >&2
    tail -n 40 "$LOG" >&2
    exit 1
  fi
  echo "$lock_hash" > node_modules/.callgate-lock-hash
  echo "ensure-deps: installed npm dependencies (npm ci, $(find node_modules -maxdepth 2 -name package.json | wc -l) packages)"
fi
