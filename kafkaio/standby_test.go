package kafkaio_test

import (
	"slices"
	"testing"
	"time"

	"github.com/kstreamgo/kstream/kafkaio"
)

// TestStandbyPromotion runs two instances with one standby replica each:
// every stateful task has a warm copy on the other instance. When one
// instance stops, the other takes its tasks over from their standbys: it
// replays nothing of the changelogs (the standbys had applied them), and the
// counts stay exact as processing goes on.
func TestStandbyPromotion(t *testing.T) {
	for _, persistent := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "pebble"}[persistent], func(t *testing.T) {
			forEachCluster(t, func(t *testing.T, c cluster) {
				in, out, app := unique("in"), unique("out"), unique("standby")
				const parts = 4
				mustCreate(t, c, parts, in, out)
				topo := groupCount(t, in, out)
				changelog := app + "-group-counts-changelog"
				newApp := func() (*kafkaio.App, func() error) {
					opts := appOpts(c, app, true, kafkaio.StandbyReplicas(1))
					if persistent {
						opts = append(opts, kafkaio.StateDir(t.TempDir()), kafkaio.MemoryBudget(64<<20))
					}
					a, err := kafkaio.NewApp(topo, opts...)
					if err != nil {
						t.Fatal(err)
					}
					return a, runApp(t, a)
				}
				a, stopA := newApp()
				b, _ := newApp()
				waitFor(t, time.Minute, "both instances to hold tasks and standbys", func() bool {
					sa, sb := a.Stats(), b.Stats()
					return sa.Tasks > 0 && sb.Tasks > 0 && sa.Standbys > 0 && sb.Standbys > 0 && sa.Tasks+sb.Tasks == 2*parts
				})
				f := newFeeder(t, c, in, 40)
				feed, want := f.feed, f.want
				feed(4000)
				waitCaughtUp(t, a, 2*time.Minute)
				waitCaughtUp(t, b, 2*time.Minute)
				logged := int64(len(consumeAll(t, c, changelog, true)))
				waitFor(t, time.Minute, "the standbys to apply the changelogs", func() bool {
					return a.Stats().StandbyApplied+b.Stats().StandbyApplied >= logged
				})
				if got := a.Stats().StandbyApplied + b.Stats().StandbyApplied; got != logged {
					t.Errorf("the standbys applied %d changelog records, the changelog has %d (one standby per task)", got, logged)
				}
				if err := stopA(); err != nil {
					t.Fatal(err)
				}
				waitFor(t, time.Minute, "the other instance to take every task", func() bool { return b.Stats().Tasks == 2*parts })
				feed(4000)
				waitCaughtUp(t, b, 2*time.Minute)
				if s := b.Stats(); s.Restored != 0 {
					t.Errorf("promoted standbys replayed %d changelog records, want 0 (they were current)", s.Restored)
				}
				checkCounts(t, latestCounts(t, c, out, true), want, true)
			})
		})
	}
}

// TestRevokedTaskReturns checks that a revoked task's state stays on disk: an
// instance gives half its tasks to a second one (at once: no warmups), and
// when the second leaves, the first restores only what the second added to
// their changelogs.
func TestRevokedTaskReturns(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		in, out, app := unique("in"), unique("out"), unique("return")
		const parts = 4
		mustCreate(t, c, parts, in, out)
		topo := groupCount(t, in, out)
		changelog := app + "-group-counts-changelog"
		newApp := func() (*kafkaio.App, func() error) {
			a, err := kafkaio.NewApp(topo, appOpts(c, app, true, kafkaio.StateDir(t.TempDir()), kafkaio.MemoryBudget(64<<20),
				kafkaio.WarmupReplicas(0))...) // tasks move at once, and restore
			if err != nil {
				t.Fatal(err)
			}
			return a, runApp(t, a)
		}
		f := newFeeder(t, c, in, 40)
		feed, want := f.feed, f.want
		a, _ := newApp()
		waitFor(t, time.Minute, "the first instance to run every task", func() bool { return a.Stats().Tasks == 2*parts })
		feed(4000)
		waitCaughtUp(t, a, 2*time.Minute)
		before := map[int32]int64{} // changelog end per partition, in records
		for _, r := range consumeAll(t, c, changelog, true) {
			before[r.Partition] = max(before[r.Partition], r.Offset+1)
		}

		b, stopB := newApp()
		waitFor(t, time.Minute, "the second instance to take half the tasks", func() bool {
			return a.Stats().Tasks == parts && b.Stats().Tasks == parts
		})
		moved := map[int32]bool{} // the store partitions the second instance took
		for _, p := range b.RestoreProgress() {
			moved[p.Partition] = true
		}
		if len(moved) == 0 {
			t.Fatal("the second instance restored no store partition")
		}
		feed(4000)
		waitCaughtUp(t, b, 2*time.Minute)
		if err := stopB(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "the first instance to take every task back", func() bool { return a.Stats().Tasks == 2*parts })
		waitCaughtUp(t, a, 2*time.Minute)

		var tail, total int64
		for _, r := range consumeAll(t, c, changelog, true) {
			if moved[r.Partition] {
				total++
				if r.Offset >= before[r.Partition] {
					tail++
				}
			}
		}
		if got := a.Stats().Restored; got != tail || tail == 0 || tail >= total {
			t.Errorf("returning tasks restored %d changelog records, want the %d the second instance added (of %d)", got, tail, total)
		}
		checkCounts(t, latestCounts(t, c, out, true), want, true)
	})
}

// TestWarmupReplicas starts a second instance next to one that runs every
// task, with the default warmups and no recovery lag accepted: the
// stateful tasks the second instance takes move only once its warmup
// replicas of them have caught up, so it replays nothing of their
// changelogs (without warmups it restores them in full, as
// TestRevokedTaskReturns shows), and the counts stay exact.
func TestWarmupReplicas(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		h := handOver(t, c, "warmup", true, 4000, func() []kafkaio.Opt { return []kafkaio.Opt{kafkaio.AcceptableRecoveryLag(0)} })
		a, b, f := h.a, h.b, h.f
		if s := b.Stats(); s.Restored != 0 || s.StandbyApplied == 0 {
			t.Errorf("the second instance replayed %d changelog records in restores and %d in warmups; want 0 and some", s.Restored, s.StandbyApplied)
		}
		if p := b.RestoreProgress(); len(p) != 0 {
			t.Errorf("the second instance restored stores: %+v", p)
		}
		if s := b.Stats(); s.Standbys != 0 {
			t.Errorf("the second instance still holds %d replicas once its tasks moved", s.Standbys)
		}
		f.feed(4000)
		waitCaughtUp(t, a, 2*time.Minute)
		waitCaughtUp(t, b, 2*time.Minute)
		checkCounts(t, latestCounts(t, c, h.out, true), f.want, true)
	})
}

// TestLocalStateAdvertised: an instance with a state directory advertises
// the stateful tasks it holds state of without running them (here, those it
// gave to a second instance), and not those it runs; once the second
// instance leaves and it runs them again, it advertises none.
func TestLocalStateAdvertised(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		const parts = 4
		h := handOver(t, c, "local", false, 2000, func() []kafkaio.Opt {
			return []kafkaio.Opt{kafkaio.StateDir(t.TempDir()), kafkaio.MemoryBudget(64 << 20), kafkaio.WarmupReplicas(0)}
		}, func(a *kafkaio.App) {
			if l := kafkaio.LocalTasks(a); len(l) != 0 {
				t.Errorf("running every task, the instance advertises local state of %v", l)
			}
		})
		a, b, stopB := h.a, h.b, h.stopB
		var given []string // the stateful tasks (sub-topology 1) the second instance runs
		for _, p := range b.RestoreProgress() {
			given = append(given, p.Task)
		}
		slices.Sort(given)
		waitFor(t, 30*time.Second, "the first instance to advertise the state of the tasks it gave", func() bool {
			return slices.Equal(kafkaio.LocalTasks(a), given)
		})
		if len(given) != parts/2 {
			t.Errorf("the second instance restored %v, want %d stateful tasks", given, parts/2)
		}
		if err := stopB(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "the first instance to run every task again", func() bool { return a.Stats().Tasks == 2*parts })
		waitFor(t, 30*time.Second, "the first instance to advertise no local state", func() bool { return len(kafkaio.LocalTasks(a)) == 0 })
	})
}

// TestReturningInstanceSkipsWarmup: an instance that comes back with its
// state directory advertises how far behind its local state is. Current
// (nothing was counted while it was away), its tasks move back to it at
// once, with no warmup and nothing to restore; behind (more was counted),
// it warms them up first.
func TestReturningInstanceSkipsWarmup(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		const parts = 4
		dirA, dirB := t.TempDir(), t.TempDir()
		started := 0
		h := handOver(t, c, "return", false, 2000, func() []kafkaio.Opt {
			dir := dirB // the second instance, and each return of it
			if started == 0 {
				dir = dirA
			}
			started++
			return []kafkaio.Opt{kafkaio.StateDir(dir), kafkaio.MemoryBudget(64 << 20), kafkaio.AcceptableRecoveryLag(0)}
		})
		a, stopB := h.a, h.stopB
		returns := func(current bool) {
			t.Helper()
			if err := stopB(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, time.Minute, "the first instance to run every task again", func() bool { return a.Stats().Tasks == 2*parts })
			if !current {
				h.f.feed(2000)
				waitCaughtUp(t, a, 2*time.Minute)
			}
			var b *kafkaio.App
			b, stopB = h.newApp()
			waitFor(t, time.Minute, "the returning instance to take half the tasks", func() bool {
				return a.Stats().Tasks == parts && b.Stats().Tasks == parts
			})
			warmups, s := kafkaio.WarmupsReceived(b), b.Stats()
			switch {
			case current && (warmups != 0 || s.Restored != 0):
				t.Errorf("returning current, the instance got %d warmups and restored %d records; want none", warmups, s.Restored)
			case !current && (warmups == 0 || s.StandbyApplied == 0):
				t.Errorf("returning behind, the instance got %d warmups, which replayed %d records; want some", warmups, s.StandbyApplied)
			}
		}
		returns(true)
		returns(false)
		h.f.feed(1000)
		waitCaughtUp(t, a, 2*time.Minute)
		checkCounts(t, latestCounts(t, c, h.out, false), h.f.want, true) // every stop was clean
		if err := stopB(); err != nil {
			t.Fatal(err)
		}
	})
}

// handedOver is what handOver started, and newApp starts another instance
// of the same application (with the next options of opts).
type handedOver struct {
	a, b   *kafkaio.App
	stopB  func() error
	f      *feeder
	out    string
	newApp func() (*kafkaio.App, func() error)
}

// handOver runs a group count (app name prefix, 4 partitions, exactly-once
// or not) on a first instance until it runs every task and has counted n
// records, calls each of before with it, then starts a second instance and
// waits until each runs half the tasks. opts gives each instance's options
// (called once per instance: a state directory each).
func handOver(t *testing.T, c cluster, name string, eos bool, n int, opts func() []kafkaio.Opt, before ...func(*kafkaio.App)) handedOver {
	t.Helper()
	in, out, app := unique("in"), unique("out"), unique(name)
	const parts = 4
	mustCreate(t, c, parts, in, out)
	topo := groupCount(t, in, out)
	newApp := func() (*kafkaio.App, func() error) {
		a, err := kafkaio.NewApp(topo, appOpts(c, app, eos, opts()...)...)
		if err != nil {
			t.Fatal(err)
		}
		return a, runApp(t, a)
	}
	h := handedOver{f: newFeeder(t, c, in, 40), out: out, newApp: newApp}
	h.a, _ = newApp()
	waitFor(t, time.Minute, "the first instance to run every task", func() bool { return h.a.Stats().Tasks == 2*parts })
	h.f.feed(n)
	waitCaughtUp(t, h.a, 2*time.Minute)
	for _, fn := range before {
		fn(h.a)
	}
	h.b, h.stopB = newApp()
	waitFor(t, time.Minute, "the second instance to take half the tasks", func() bool {
		return h.a.Stats().Tasks == parts && h.b.Stats().Tasks == parts
	})
	return h
}
