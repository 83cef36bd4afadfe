package kafkaio_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kafkaio"
	"github.com/kstreamgo/kstream/serde"
)

// privateBroker is a real Apache Kafka broker of one test, started by
// scripts/kafka.sh in its own folder, so that the test may crash and
// restart it without disturbing the tests that share the suite's broker.
type privateBroker struct {
	script string
	env    []string
	addr   string
}

// startPrivateBroker starts a broker from the suite's cached Kafka jars. It
// runs where the real-broker tests run: KSTREAM_BROKERS set (by
// scripts/test.sh, which fetched the jars) and java on the PATH.
func startPrivateBroker(t *testing.T) *privateBroker {
	t.Helper()
	if os.Getenv("KSTREAM_BROKERS") == "" {
		t.Skip("KSTREAM_BROKERS is not set: no real-broker tests (scripts/test.sh starts a broker and the jars this test needs)")
	}
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("java is not on the PATH: cannot start a private broker")
	}
	script, err := filepath.Abs(filepath.Join("..", "scripts", "kafka.sh"))
	if err != nil {
		t.Fatal(err)
	}
	b := &privateBroker{script: script, env: append(os.Environ(),
		"KAFKA_RUN_DIR="+t.TempDir(), "KAFKA_PORT=0", "KAFKA_CONTROLLER_PORT=0", "KAFKA_HEAP=-Xms128m -Xmx512m")}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("private broker log:\n%s", b.run(t, "logs"))
		}
		b.run(t, "down")
	})
	out := strings.Fields(b.run(t, "up"))
	if len(out) == 0 || !strings.HasPrefix(out[len(out)-1], "127.0.0.1:") {
		t.Fatalf("kafka.sh up printed no address: %q", out)
	}
	b.addr = out[len(out)-1]
	return b
}

// run runs kafka.sh with a command and returns its standard output; it
// fails the test, with the script's messages, when the script fails.
func (b *privateBroker) run(t *testing.T, cmd string, env ...string) string {
	t.Helper()
	c := exec.Command("bash", b.script, cmd)
	c.Env = slices.Concat(b.env, env)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		t.Fatalf("kafka.sh %s: %v\n%s%s", cmd, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// TestBrokerRestart crashes the broker (SIGKILL) under running apps, and
// starts it again, in each subtest: the apps must ride through the outage by
// themselves, without Run failing.
func TestBrokerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: crashes and restarts a broker")
	}
	b := startPrivateBroker(t)
	brokerRestartCount(t, b)
	t.Run("global-table", func(t *testing.T) { brokerRestartGlobalTable(t, b) })
	t.Run("standbys", func(t *testing.T) { brokerRestartStandbys(t, b) })
}

// brokerRestartCount restarts the broker while a count processes: the app
// then processes the input left and new input. Under exactly-once the
// read-committed output is exact, one record per input; under at-least-once
// no count is missing.
func brokerRestartCount(t *testing.T, b *privateBroker) {
	c := cluster{name: "private", brokers: []string{b.addr}}
	for _, eos := range []bool{false, true} {
		t.Run(mode(eos), func(t *testing.T) {
			in, out, app := unique("in"), unique("out"), unique("restart")
			mustCreate(t, c, 4, in, out)
			f := newFeeder(t, c, in, 300)
			f.feed(30_000)
			a, err := kafkaio.NewApp(groupCount(t, in, out, time.Millisecond),
				appOpts(c, app, eos, kafkaio.StateDir(t.TempDir()), kafkaio.MaxBatch(500))...)
			if err != nil {
				t.Fatal(err)
			}
			stop := runApp(t, a)
			waitFor(t, time.Minute, "the app to process some records", func() bool {
				s := a.Stats()
				return s.Processed > 10_000 && s.Commits > 2
			})
			before := a.Stats()
			b.run(t, "stop", "KAFKA_STOP_SIGNAL=KILL")
			time.Sleep(2 * time.Second)
			b.run(t, "start")
			t.Logf("broker restarted; the app had processed %d records in %d commits", before.Processed, before.Commits)
			f.feed(5_000)
			waitCaughtUp(t, a, 3*time.Minute)
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			t.Logf("after the restart: %+v", a.Stats())
			checkCounts(t, latestCounts(t, c, out, eos), f.want, eos)
			if eos {
				if n := len(consumeAll(t, c, out, true)); n != f.next {
					t.Errorf("read-committed output has %d records, want exactly one per input: %d", n, f.next)
				}
			}
		})
	}
}

// brokerRestartGlobalTable restarts the broker under an exactly-once app
// whose stream joins a global table: the global table's own consumer must
// reconnect too, so that updates made after the restart reach the joins.
func brokerRestartGlobalTable(t *testing.T, b *privateBroker) {
	c := cluster{name: "private", brokers: []string{b.addr}}
	in, users, out, app := unique("in"), unique("users"), unique("out"), unique("restart-global")
	mustCreate(t, c, 2, in, users, out)
	produce(t, c, users, []rec{{key: []byte("u"), value: []byte("before")}})
	bld := kstream.NewBuilder()
	g := kstream.SourceGlobalTable(bld, users, serde.String, serde.String, kstream.Named("users"))
	kstream.JoinGlobal(kstream.Source(bld, in, serde.String, serde.String), g,
		func(_, v string) string { return v }, func(_, _ string, name string) string { return name }).
		To(out, serde.String, serde.String)
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	a, err := kafkaio.NewApp(topo, appOpts(c, app, true, kafkaio.StateDir(t.TempDir()))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := runApp(t, a)
	feed := func(from, n int) {
		recs := make([]rec, n)
		for i := range recs {
			recs[i] = rec{key: []byte(strconv.Itoa(from + i)), value: []byte("u")}
		}
		produce(t, c, in, recs)
	}
	feed(0, 100)
	waitFor(t, time.Minute, "the joins before the restart", func() bool { return len(consumeAll(t, c, out, true)) == 100 })
	b.run(t, "stop", "KAFKA_STOP_SIGNAL=KILL")
	time.Sleep(2 * time.Second)
	b.run(t, "start")
	produce(t, c, users, []rec{{key: []byte("u"), value: []byte("after")}})
	// Once the update is in the global store, new records join with it.
	waitFor(t, 2*time.Minute, "a join with the value updated after the restart", func() bool {
		feed(1000, 1)
		for _, r := range consumeAll(t, c, out, true) {
			if string(r.Value) == "after" {
				return true
			}
		}
		return false
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	seen := map[string]int{}
	for _, r := range consumeAll(t, c, out, true) {
		seen[string(r.Key)]++
		if string(r.Key) != "1000" && seen[string(r.Key)] > 1 {
			t.Errorf("key %s joined %d times", r.Key, seen[string(r.Key)])
		}
	}
	for i := range 100 {
		if seen[strconv.Itoa(i)] != 1 {
			t.Errorf("key %d joined %d times, want once", i, seen[strconv.Itoa(i)])
		}
	}
}

// brokerRestartStandbys restarts the broker under two exactly-once
// instances with standby replicas: the standbys must follow the changelogs
// again after the restart, so that when one instance then stops, the other
// takes over its tasks and the output stays exact.
func brokerRestartStandbys(t *testing.T, b *privateBroker) {
	c := cluster{name: "private", brokers: []string{b.addr}}
	in, out, app := unique("in"), unique("out"), unique("restart-standby")
	mustCreate(t, c, 4, in, out)
	topo := groupCount(t, in, out)
	start := func() (*kafkaio.App, func() error) {
		a, err := kafkaio.NewApp(topo, appOpts(c, app, true, kafkaio.StandbyReplicas(1), kafkaio.StateDir(t.TempDir()))...)
		if err != nil {
			t.Fatal(err)
		}
		return a, runApp(t, a)
	}
	x, stopX := start()
	y, stopY := start()
	waitFor(t, time.Minute, "both instances to hold tasks and standbys", func() bool {
		sx, sy := x.Stats(), y.Stats()
		return sx.Tasks > 0 && sy.Tasks > 0 && sx.Standbys > 0 && sy.Standbys > 0
	})
	f := newFeeder(t, c, in, 40)
	f.feed(4000)
	waitCaughtUp(t, x, 2*time.Minute)
	waitCaughtUp(t, y, 2*time.Minute)
	applied := func() int64 { return x.Stats().StandbyApplied + y.Stats().StandbyApplied }
	before := applied()
	b.run(t, "stop", "KAFKA_STOP_SIGNAL=KILL")
	time.Sleep(2 * time.Second)
	b.run(t, "start")
	f.feed(4000)
	waitCaughtUp(t, x, 3*time.Minute)
	waitFor(t, 2*time.Minute, "the standbys to apply changelog records written after the restart", func() bool {
		return applied() > before
	})
	if err := stopX(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	waitFor(t, 2*time.Minute, "the other instance to take every task", func() bool { return y.Stats().Tasks == 8 })
	f.feed(2000)
	waitCaughtUp(t, y, 2*time.Minute)
	if err := stopY(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkCounts(t, latestCounts(t, c, out, true), f.want, true)
	if n := len(consumeAll(t, c, out, true)); n != f.next {
		t.Errorf("read-committed output has %d records, want exactly one per input: %d", n, f.next)
	}
}

// runWithFault runs a group count of 22,000 records on a new embedded
// cluster and installs fault once the app has committed a few times. It
// returns the app, stopped after catching up with Run returning nil, the
// cluster, the output topic and what the output must hold.
func runWithFault(t *testing.T, eos bool, fault kfake.Fault, extra ...kafkaio.Opt) (*kafkaio.App, cluster, string, *feeder) {
	t.Helper()
	e, err := kafkaio.StartEmbedded(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	c := cluster{name: "embedded", brokers: e.Seeds()}
	in, out, app := unique("in"), unique("out"), unique("fault")
	mustCreate(t, c, 4, in, out)
	f := newFeeder(t, c, in, 200)
	f.feed(20_000)
	a, err := kafkaio.NewApp(groupCount(t, in, out, time.Millisecond),
		appOpts(c, app, eos, append([]kafkaio.Opt{kafkaio.MaxBatch(500)}, extra...)...)...)
	if err != nil {
		t.Fatal(err)
	}
	stop := runApp(t, a)
	waitFor(t, time.Minute, "the app to commit", func() bool { return a.Stats().Commits > 2 })
	h := e.Cluster().Fault(fault)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		select {
		case <-a.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := h.Wait(ctx, max(fault.Count, 1)); err != nil {
		t.Fatalf("the fault was not hit (%v); Run: %v", err, stop())
	}
	f.feed(2_000)
	waitCaughtUp(t, a, 2*time.Minute)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("%+v", a.Stats())
	return a, c, out, f
}

// TestTransactionFailureRecovers makes the embedded cluster fail one
// request of an exactly-once app's transaction, as a broker restart or a
// coordinator failover does: the app must roll back to its last commit,
// start a new transactional producer and carry on, with an exact output.
func TestTransactionFailureRecovers(t *testing.T) {
	cases := []struct {
		name       string
		fault      kfake.Fault
		persistent bool // Pebble stores in a state directory
	}{
		// The answer the real broker gave in TestBrokerRestart: the
		// coordinator had aborted the transaction and bumped the epoch.
		{"offset-commit", kfake.Fault{Keys: []kmsg.Key{kmsg.TxnOffsetCommit}, Err: kerr.InvalidProducerEpoch}, false},
		{"end", kfake.Fault{Keys: []kmsg.Key{kmsg.EndTxn}, TopLevel: true, Err: kerr.ProducerFenced}, false},
		{"end-persistent", kfake.Fault{Keys: []kmsg.Key{kmsg.EndTxn}, TopLevel: true, Err: kerr.ProducerFenced}, true},
		{"produce", kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.InvalidProducerEpoch}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var extra []kafkaio.Opt
			if tc.persistent {
				extra = append(extra, kafkaio.StateDir(t.TempDir()))
			}
			a, c, out, f := runWithFault(t, true, tc.fault, extra...)
			if a.Stats().Aborts == 0 {
				t.Errorf("no transaction was rolled back after the fault")
			}
			checkCounts(t, latestCounts(t, c, out, true), f.want, true)
			if n := len(consumeAll(t, c, out, true)); n != f.next {
				t.Errorf("read-committed output has %d records, want exactly one per input: %d", n, f.next)
			}
		})
	}
}

// TestOffsetCommitFailureIsRetried makes the embedded cluster refuse two
// offset commits of an at-least-once app with a state directory (whose
// commits are synchronous): the app must retry at the next commit interval
// instead of failing, and lose nothing.
func TestOffsetCommitFailureIsRetried(t *testing.T) {
	_, c, out, f := runWithFault(t, false, kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Err: kerr.UnknownServerError, Count: 2},
		kafkaio.StateDir(t.TempDir()))
	checkCounts(t, latestCounts(t, c, out, false), f.want, false)
}
