#!/usr/bin/env bash
# kstream's whole test suite: formatting, vet, and `go test -race` with a real
# single-node Kafka broker (scripts/kafka.sh) when java and mvn are available.
#
#   scripts/test.sh [go test args...]     e.g. scripts/test.sh -run TestWordCount -v
#                                         or   scripts/test.sh ./serde/... -v
#
# Environment:
#   KSTREAM_BROKERS        use this broker instead of starting one
#   KSTREAM_SKIP_BROKER=1  do not start a broker (broker tests then skip)
#   KSTREAM_TEST_PKGS      packages to test (default ./...)
#   KSTREAM_RECORD=1       rewrite the Kafka Streams recordings of testdata/scenarios
#                          instead of failing when they changed
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

section() { printf '\n==== %s ====\n' "$*"; }

section "environment"
go version
if command -v java >/dev/null; then
  java -version 2>&1 | head -n1
fi
echo "GOMAXPROCS=${GOMAXPROCS:-} CI=${CI:-} nproc=$(nproc 2>/dev/null || echo ?)"

section "go mod download"
go mod download

section "gofmt"
go_files=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  while IFS= read -r -d '' f; do
    # Skip tracked files deleted in the work tree and testdata fixtures.
    [[ -f "$f" && "$f" != */testdata/* && "$f" != testdata/* ]] && go_files+=("$f")
  done < <(git ls-files -z -- '*.go')
else
  while IFS= read -r -d '' f; do
    go_files+=("${f#./}")
  done < <(find . -path ./.cache -prune -o -path '*/testdata' -prune -o -name '*.go' -type f -print0)
fi
if ((${#go_files[@]} > 0)); then
  unformatted="$(gofmt -l "${go_files[@]}")"
  if [[ -n "$unformatted" ]]; then
    echo "these files need gofmt (run: gofmt -w <file>):" >&2
    while IFS= read -r f; do echo "  $f"; done <<<"$unformatted" >&2
    exit 1
  fi
fi
echo "gofmt: ${#go_files[@]} files ok"

section "go vet"
go vet ./...
echo "go vet: ok"

section "Kafka Streams recordings (testdata/scenarios)"
# The differential tests (differential_test.go) compare kstest's output with
# Kafka Streams' output recorded in testdata/scenarios/*.expected.json. Run
# every scenario through Kafka Streams' TopologyTestDriver again
# (internal/javaref/streams) and fail if a recording changed;
# KSTREAM_RECORD=1 rewrites them instead.
if command -v java >/dev/null && command -v mvn >/dev/null; then
  kafka_version="$(sed -n 's:.*<kafka\.version>[[:space:]]*\([^<[:space:]]*\)[[:space:]]*</kafka\.version>.*:\1:p' internal/javaref/pom.xml | head -n1)"
  javaref_target=internal/javaref/target/streams
  mvn -B -q -ntp -Dstyle.color=never -f internal/javaref/streams/pom.xml -Dkafka.version="$kafka_version" \
    compile dependency:build-classpath
  record_args=(-check)
  if [[ "${KSTREAM_RECORD:-}" == 1 ]]; then record_args=(); fi
  java -cp "$javaref_target/classes:$(cat "$javaref_target/classpath.txt")" \
    dev.kstream.javaref.Scenarios ${record_args[@]+"${record_args[@]}"} testdata/scenarios
else
  echo "java or mvn not found: recordings not checked (go test still compares kstest with them)"
fi

broker_started=0
test_status=0
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local status=$?
  if ((broker_started)); then
    if ((status != 0 || test_status != 0)); then
      section "Kafka broker log (tail)"
      LINES=150 scripts/kafka.sh logs >&2 || true
    fi
    section "Kafka broker down"
    scripts/kafka.sh down || true
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

section "Kafka broker"
if [[ -n "${KSTREAM_BROKERS:-}" ]]; then
  echo "using KSTREAM_BROKERS=$KSTREAM_BROKERS"
elif [[ "${KSTREAM_SKIP_BROKER:-}" == 1 ]]; then
  echo "KSTREAM_SKIP_BROKER=1: no broker; tests that need one skip"
elif addr="$(scripts/kafka.sh status 2>/dev/null)"; then
  # A broker started by hand with scripts/kafka.sh up: use it, leave it up.
  export KSTREAM_BROKERS="$addr"
  echo "using the running broker: KSTREAM_BROKERS=$KSTREAM_BROKERS"
elif command -v java >/dev/null && command -v mvn >/dev/null; then
  broker_started=1
  addr="$(scripts/kafka.sh up | tail -n1)"
  if [[ ! "$addr" =~ ^[0-9.]+:[0-9]+$ ]]; then
    echo "scripts/kafka.sh up printed no broker address (got: '$addr')" >&2
    exit 1
  fi
  export KSTREAM_BROKERS="$addr"
  echo "KSTREAM_BROKERS=$KSTREAM_BROKERS"
else
  echo "java or mvn not found: no broker; tests that need one skip"
fi

section "go test -race"
# Test ./... (or KSTREAM_TEST_PKGS) unless the arguments name packages.
pkgs=()
read -r -a pkgs <<<"${KSTREAM_TEST_PKGS:-./...}"
for a in "$@"; do
  case "$a" in
    ./* | ../* | github.com/*) pkgs=() ;;
  esac
done
set +e
if [[ -n "${KSTREAM_BROKERS:-}" && "${pkgs[*]:-}" == "./..." ]]; then
  # franz-go v1.22.3 has a data race of its own (its offset-listing goroutine
  # and PollRecords both set a fetch cursor's offset) that the race detector
  # catches now and then against a real broker. So kafkaio runs under -race
  # on the embedded cluster, and against the real broker without -race;
  # every other package runs under -race with the broker.
  mapfile -t others < <(go list ./... | grep -v '/kafkaio$')
  go test -race -count=1 -timeout 30m "${others[@]}" "$@"
  test_status=$?
  echo "-- kafkaio under -race, embedded cluster"
  KSTREAM_BROKERS='' go test -race -count=1 -timeout 30m ./kafkaio "$@"
  status=$?
  ((test_status == 0)) && test_status=$status
  echo "-- kafkaio against the real broker ($KSTREAM_BROKERS)"
  go test -count=1 -timeout 30m ./kafkaio "$@"
  status=$?
  ((test_status == 0)) && test_status=$status
else
  go test -race -count=1 -timeout 30m "${pkgs[@]}" "$@"
  test_status=$?
fi
set -e

section "result"
if ((test_status == 0)); then
  echo "go test: PASS"
else
  echo "go test: FAIL (exit status $test_status)" >&2
fi
exit "$test_status"
