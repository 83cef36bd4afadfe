package kafkaio_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kafkaio"
	"github.com/kstreamgo/kstream/serde"
	"github.com/kstreamgo/kstream/state"
)

// groupCount counts input records per value, re-keying through a
// repartition. A non-zero throttle sleeps that long every 100 input records,
// so that a test can stop an instance mid-stream.
func groupCount(t testing.TB, in, out string, throttle ...time.Duration) *kstream.Topology {
	t.Helper()
	b := kstream.NewBuilder()
	s := kstream.Source(b, in, serde.String, serde.String)
	var counted atomic.Int64
	if len(throttle) > 0 && throttle[0] > 0 {
		s = s.Peek(func(string, string) {
			if counted.Add(1)%100 == 0 {
				time.Sleep(throttle[0])
			}
		})
	}
	counts := kstream.GroupBy(s, func(_, v string) string { return v }, serde.String).
		Count(kstream.Named("group-counts")).ToStream()
	if len(throttle) > 0 && throttle[0] > 0 {
		counts = counts.Peek(func(string, int64) {
			if counted.Add(1)%100 == 0 {
				time.Sleep(throttle[0])
			}
		})
	}
	counts.To(out, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// groupInput returns n records whose values cycle over groups keys.
func groupInput(n, groups int) ([]rec, map[string]int64) {
	recs := make([]rec, n)
	want := map[string]int64{}
	for i := range recs {
		g := "g" + strconv.Itoa(i%groups)
		recs[i] = rec{key: []byte(strconv.Itoa(i)), value: []byte(g)}
		want[g]++
	}
	return recs, want
}

// feeder produces group-count input in rounds, with keys unique across
// rounds, and keeps the expected counts in want.
type feeder struct {
	t      testing.TB
	c      cluster
	topic  string
	groups int
	next   int
	want   map[string]int64
}

func newFeeder(t testing.TB, c cluster, topic string, groups int) *feeder {
	return &feeder{t: t, c: c, topic: topic, groups: groups, want: map[string]int64{}}
}

// feed produces n more records.
func (f *feeder) feed(n int) {
	recs, _ := groupInput(n, f.groups)
	for i := range recs {
		recs[i].key = []byte(strconv.Itoa(f.next + i))
		f.want[string(recs[i].value)]++
	}
	f.next += n
	produce(f.t, f.c, f.topic, recs)
}

func mode(eos bool) string {
	if eos {
		return "exactly-once"
	}
	return "at-least-once"
}

func appOpts(c cluster, app string, eos bool, extra ...kafkaio.Opt) []kafkaio.Opt {
	opts := []kafkaio.Opt{kafkaio.AppID(app), kafkaio.Brokers(c.brokers...), kafkaio.CommitInterval(100 * time.Millisecond)}
	if eos {
		opts = append(opts, kafkaio.ExactlyOnce())
	}
	return append(opts, extra...)
}

// checkCounts compares final counts; exact, or (at-least-once after a crash)
// at least the expected count.
func checkCounts(t testing.TB, got, want map[string]int64, exact bool) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("key %s missing", k)
		case exact && g != w:
			t.Errorf("key %s: count %d, want %d", k, g, w)
		case !exact && g < w:
			t.Errorf("key %s: count %d, want at least %d", k, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d keys, want %d", len(got), len(want))
	}
}

func waitCaughtUp(t testing.TB, app *kafkaio.App, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		lag, err := app.Lag(ctx)
		if err == nil && lag == 0 {
			return
		}
		select {
		case <-app.Done():
			t.Fatalf("the app stopped before it caught up: lag %d, stats %+v", lag, app.Stats())
		default:
		}
		if ctx.Err() != nil {
			t.Fatalf("not caught up after %v: lag %d, err %v, stats %+v", timeout, lag, err, app.Stats())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestThreeInstancesShareTheWork(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 100k records through three instances")
	}
	for _, eos := range []bool{false, true} {
		t.Run(mode(eos), func(t *testing.T) {
			forEachCluster(t, func(t *testing.T, c cluster) {
				in, out, app := unique("in"), unique("out"), unique("three")
				mustCreate(t, c, 6, in, out)
				recs, want := groupInput(100_000, 1000)
				produce(t, c, in, recs)
				// Throttled so that no instance finishes alone before the
				// others join.
				topo := groupCount(t, in, out, time.Millisecond)
				var apps []*kafkaio.App
				var stops []func() error
				for range 3 {
					a, err := kafkaio.NewApp(topo, appOpts(c, app, eos, kafkaio.MaxBatch(2000))...)
					if err != nil {
						t.Fatal(err)
					}
					apps = append(apps, a)
					stops = append(stops, runApp(t, a))
				}
				waitFor(t, 2*time.Minute, "all three instances to process", func() bool {
					for _, a := range apps {
						if a.Stats().Processed == 0 {
							return false
						}
					}
					return true
				})
				waitCaughtUp(t, apps[0], 3*time.Minute)
				for i, stop := range stops {
					if err := stop(); err != nil {
						t.Fatalf("instance %d: %v", i, err)
					}
				}
				var total int64
				for i, a := range apps {
					t.Logf("instance %d: %+v", i, a.Stats())
					total += a.Stats().Processed
				}
				checkCounts(t, latestCounts(t, c, out, eos), want, true)
				if eos {
					if n := len(consumeAll(t, c, out, true)); n != len(recs) {
						t.Errorf("read-committed output has %d records, want one per input: %d", n, len(recs))
					}
				}
			})
		})
	}
}

func TestAbruptStopAndRestart(t *testing.T) {
	for _, eos := range []bool{false, true} {
		t.Run(mode(eos), func(t *testing.T) {
			forEachCluster(t, func(t *testing.T, c cluster) {
				in, out, app := unique("in"), unique("out"), unique("abrupt")
				mustCreate(t, c, 4, in, out)
				recs, want := groupInput(30_000, 300)
				produce(t, c, in, recs)
				topo := groupCount(t, in, out, time.Millisecond)
				dir := t.TempDir()
				first, err := kafkaio.NewApp(topo, appOpts(c, app, eos, kafkaio.StateDir(dir), kafkaio.MaxBatch(500))...)
				if err != nil {
					t.Fatal(err)
				}
				runApp(t, first)
				waitFor(t, time.Minute, "the first instance to process some records", func() bool {
					s := first.Stats()
					return s.Processed > 40000 && s.Commits > 2
				})
				kafkaio.Crash(first)
				processedBefore := first.Stats().Processed
				// What the restart must replay: the committed changelog
				// records after each task's checkpoint, and no more.
				tail, total := changelogTail(t, c, dir, app, "group-counts", 4)
				t.Logf("changelog: %d records, %d after the checkpoints", total, tail)
				second, err := kafkaio.NewApp(topo, appOpts(c, app, eos, kafkaio.StateDir(dir))...)
				if err != nil {
					t.Fatal(err)
				}
				stop := runApp(t, second)
				waitFor(t, time.Minute, "the second instance to start its tasks", func() bool { return second.Stats().Tasks > 0 })
				waitCaughtUp(t, second, 2*time.Minute)
				if err := stop(); err != nil {
					t.Fatal(err)
				}
				t.Logf("first: %d processed before the crash; second: %+v", processedBefore, second.Stats())
				if got := second.Stats().Restored; got != tail {
					t.Errorf("the second instance restored %d changelog records, want exactly the %d after the checkpoints", got, tail)
				}
				if tail >= total {
					t.Errorf("the tail after the checkpoints is the whole changelog (%d records): no checkpoint was used", total)
				}
				checkCounts(t, latestCounts(t, c, out, eos), want, eos)
				if eos {
					outs := consumeAll(t, c, out, true)
					if n := len(outs); n != len(recs) {
						t.Errorf("read-committed output has %d records, want exactly one per input: %d", n, len(recs))
						seen := map[string][]int64{}
						for _, r := range outs {
							v, _ := serde.Int64.Decode(r.Value)
							seen[string(r.Key)] = append(seen[string(r.Key)], v)
						}
						shown := 0
						for k, vs := range seen {
							for i, v := range vs {
								if v != int64(i+1) && shown < 5 {
									t.Logf("key %s: counts %v", k, vs)
									shown++
									break
								}
							}
						}
					}
				}
			})
		})
	}
}

// TestChildProcessKilled runs an exactly-once app in a child process (this
// test binary, re-executed) and kills it with SIGKILL at random points.
func TestChildProcessKilled(t *testing.T) {
	if os.Getenv("KSTREAM_CHILD_APP") != "" {
		runChildApp(t, groupCount(t, os.Getenv("KSTREAM_CHILD_IN"), os.Getenv("KSTREAM_CHILD_OUT"), 10*time.Millisecond))
		return
	}
	if testing.Short() {
		t.Skip("-short: kills child processes")
	}
	forEachCluster(t, func(t *testing.T, c cluster) {
		in, out, app := unique("in"), unique("out"), unique("killed")
		mustCreate(t, c, 4, in, out)
		recs, want := groupInput(40_000, 400)
		produce(t, c, in, recs)
		dir := t.TempDir()
		env := append(os.Environ(), "KSTREAM_CHILD_APP="+app, "KSTREAM_CHILD_IN="+in, "KSTREAM_CHILD_OUT="+out,
			"KSTREAM_CHILD_BROKERS="+strings.Join(c.brokers, ","), "KSTREAM_CHILD_DIR="+dir)
		killChildren(t, c, "TestChildProcessKilled", env, dir, out, len(recs))
		// A last instance in this process finishes the work.
		last, err := kafkaio.NewApp(groupCount(t, in, out), childOpts(app, c.brokers, dir)...)
		if err != nil {
			t.Fatal(err)
		}
		stop := runApp(t, last)
		waitFor(t, time.Minute, "the last instance to start its tasks", func() bool { return last.Stats().Tasks > 0 })
		waitCaughtUp(t, last, 3*time.Minute)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		checkCounts(t, latestCounts(t, c, out, true), want, true)
		if n := len(consumeAll(t, c, out, true)); n != len(recs) {
			t.Errorf("read-committed output has %d records, want exactly one per input: %d", n, len(recs))
		}
	})
}

// changelogTail opens the state directory of a stopped instance and counts
// the committed records of a store's changelog after each task's checkpoint
// (all of them when a task has none), and in all.
func changelogTail(t *testing.T, c cluster, dir, app, store string, partitions int32) (tail, total int64) {
	t.Helper()
	db, err := state.Open(kafkaio.StateDBPath(dir, app))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	topic := app + "-" + store + "-changelog"
	from := map[int32]int64{}
	for p := range partitions {
		// The store's task: the sub-topology after the repartition, 1.
		ck, ok, err := db.Checkpoint(fmt.Sprintf("%s/1_%d", app, p))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			from[p] = ck[fmt.Sprintf("%s/%d", topic, p)]
		}
	}
	for _, r := range consumeAll(t, c, topic, true) {
		total++
		if r.Offset >= from[r.Partition] {
			tail++
		}
	}
	return tail, total
}

// killChildren runs the test test in child processes with env (the child
// runs the app), and kills them at several points: each child runs until
// it has committed more output to topic out than the one before, then a
// little longer (so that kills land in restore, mid-transaction and between
// commits). It checks that they made progress and left work to do: want is
// the number of outputs in all.
func killChildren(t *testing.T, c cluster, test string, env []string, dir, out string, want int) {
	t.Helper()
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v")
		cmd.Env = env
		log, err := os.Create(fmt.Sprintf("%s/child-%d.log", dir, time.Now().UnixNano()))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	committed := 0
	for i, extra := range []time.Duration{0, 150, 40, 300} {
		cmd := start()
		waitFor(t, 2*time.Minute, fmt.Sprintf("child %d to commit more output", i), func() bool {
			n := len(consumeAll(t, c, out, true))
			if n > committed {
				committed = n
				return true
			}
			return false
		})
		time.Sleep(extra * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		t.Logf("killed child %d %v after it had %d outputs committed", i, extra*time.Millisecond, committed)
	}
	done := len(consumeAll(t, c, out, true))
	t.Logf("after the kills: %d of %d outputs committed", done, want)
	if done == 0 || done == want {
		t.Fatalf("the killed children committed %d of %d outputs: the kills did not land mid-stream", done, want)
	}
}

func childOpts(app string, brokers []string, dir string) []kafkaio.Opt {
	return []kafkaio.Opt{kafkaio.AppID(app), kafkaio.Brokers(brokers...), kafkaio.ExactlyOnce(),
		kafkaio.StateDir(dir), kafkaio.MaxBatch(500),
		// Static membership: a restarted instance takes its predecessor's
		// place at once instead of waiting for its session to time out.
		kafkaio.ClientOpts(kgo.InstanceID(app + "-member"))}
}

// runChildApp runs topo in a child process of killChildren, until killed.
func runChildApp(t *testing.T, topo *kstream.Topology) {
	c := cluster{brokers: strings.Split(os.Getenv("KSTREAM_CHILD_BROKERS"), ",")}
	app := os.Getenv("KSTREAM_CHILD_APP")
	a, err := kafkaio.NewApp(topo, childOpts(app, c.brokers, os.Getenv("KSTREAM_CHILD_DIR"))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = a.Run(ctx) // runs until killed
}

// TestInstancesLeaveAndJoin changes the group while it processes: of three
// instances, one stops cleanly mid-stream and a new one joins later, so
// tasks move twice (cooperative revocations under load). The output must
// be exact under exactly-once and complete under at-least-once.
func TestInstancesLeaveAndJoin(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 60k records through four instances")
	}
	for _, eos := range []bool{false, true} {
		t.Run(mode(eos), func(t *testing.T) {
			forEachCluster(t, func(t *testing.T, c cluster) {
				in, out, app := unique("in"), unique("out"), unique("churn")
				mustCreate(t, c, 6, in, out)
				recs, want := groupInput(60_000, 600)
				produce(t, c, in, recs)
				topo := groupCount(t, in, out, 2*time.Millisecond)
				start := func() (*kafkaio.App, func() error) {
					// Tasks move at once: with warmups, the new instance
					// may get its tasks only after the others finished.
					a, err := kafkaio.NewApp(topo, appOpts(c, app, eos, kafkaio.StateDir(t.TempDir()), kafkaio.MaxBatch(1000),
						kafkaio.WarmupReplicas(0))...)
					if err != nil {
						t.Fatal(err)
					}
					return a, runApp(t, a)
				}
				var apps []*kafkaio.App
				var stops []func() error
				for range 3 {
					a, stop := start()
					apps, stops = append(apps, a), append(stops, stop)
				}
				var processed int64
				progress := func() int64 {
					var n int64
					for _, a := range apps {
						n += a.Stats().Processed
					}
					return n
				}
				waitFor(t, 2*time.Minute, "a third of the work", func() bool { return progress() > 40_000 })
				if err := stops[1](); err != nil {
					t.Fatalf("instance 1 stopping: %v", err)
				}
				processed = progress()
				waitFor(t, 2*time.Minute, "progress without instance 1", func() bool { return progress() > processed+20_000 })
				a, stop := start()
				apps, stops = append(apps, a), append(stops, stop)
				waitFor(t, 2*time.Minute, "the new instance to process", func() bool { return a.Stats().Processed > 0 })
				waitCaughtUp(t, apps[0], 3*time.Minute)
				for i, stop := range stops {
					if err := stop(); err != nil {
						t.Fatalf("instance %d: %v", i, err)
					}
				}
				for i, a := range apps {
					t.Logf("instance %d: %+v", i, a.Stats())
				}
				checkCounts(t, latestCounts(t, c, out, eos), want, eos)
				if eos {
					if n := len(consumeAll(t, c, out, true)); n != len(recs) {
						t.Errorf("read-committed output has %d records, want one per input: %d", n, len(recs))
					}
				}
			})
		})
	}
}

// TestIdleInstanceLosesTasksTwice: under exactly-once, an idle instance
// (no transaction ending) loses tasks in two rebalances in a row, as a
// second and a third instance join. franz-go's transactional session
// delivers only the first revocation until a transaction ends; the
// instance must drop the tasks of the second too, rather than keep them as
// if it owned them (stale state, served to queries and used again if the
// tasks came back). Then the three instances count exactly.
func TestIdleInstanceLosesTasksTwice(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		in, out, app := unique("in"), unique("out"), unique("idle-revokes")
		const parts = 6
		mustCreate(t, c, parts, in, out)
		topo := groupCount(t, in, out)
		var apps []*kafkaio.App
		start := func() {
			a, err := kafkaio.NewApp(topo, appOpts(c, app, true)...)
			if err != nil {
				t.Fatal(err)
			}
			runApp(t, a)
			apps = append(apps, a)
			waitFor(t, time.Minute, fmt.Sprintf("%d instances to share the tasks, each once", len(apps)), func() bool {
				sum := 0
				for _, a := range apps {
					n := a.Stats().Tasks
					if n == 0 {
						return false
					}
					sum += n
				}
				return sum == 2*parts
			})
		}
		start()
		start()
		start()
		f := newFeeder(t, c, in, 30)
		f.feed(3000)
		for _, a := range apps {
			waitCaughtUp(t, a, 2*time.Minute)
		}
		checkCounts(t, latestCounts(t, c, out, true), f.want, true)
	})
}
