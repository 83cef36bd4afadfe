package state

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// restoreL0Sublevels is how deep L0 may grow while loaders restore before
// compactions run again (see compactionGate). Pebble stops writes at
// L0StopWritesThreshold (24 sublevels, see Open); a read checks the bloom
// filter of each sublevel's table that spans its key.
const restoreL0Sublevels = 16

// gateTick is how often the gate offers Pebble the compactions it may run,
// besides when a compaction ends and when Pebble or a restore says that more
// may run (Pebble's default scheduler samples as often).
const gateTick = 100 * time.Millisecond

// compactionGate is the Pebble compaction scheduler of a DB. Like Pebble's
// default one, it lets Pebble run as many compactions at once as Pebble
// allows itself (DBForCompaction.GetAllowedWithoutPermission, which grows
// with the compaction debt up to Open's CompactionConcurrencyRange). Unlike
// it, it holds compactions back while loaders restore (from a Loader's
// first CommitAsync to its next Commit or its Close), until L0 holds
// restoreL0Sublevels sublevels.
//
// Why: a restore's large commits are sstables ingested into L0 whenever
// they overlap keys of the DB, which every commit after the first does (the
// records of a changelog are in offset order, not in key order). With
// Pebble's default threshold (a compaction of L0 from 4 sublevels on), each
// L0 compaction rewrote every key restored until then: in a restore of 4M
// records (17 commits of 8 MiB), compactions took a quarter of the CPU,
// competing with the restore for both cores. Held back, L0 is compacted
// once, after the restore (or once it has restoreL0Sublevels sublevels),
// in one pass. The tables keep their bloom filters: a read of a restored
// key meanwhile checks a filter per sublevel, not the table.
type compactionGate struct {
	restoring atomic.Int32 // loaders restoring
	// l0 is L0's sublevels, as the granter last saw them during a restore
	// (Pebble asks TrySchedule with its lock held: the gate cannot read
	// the DB's metrics then).
	l0 atomic.Int32

	db  pebble.DBForCompaction    // set by Register, before any other call
	pdb atomic.Pointer[pebble.DB] // the same, once Open has returned it

	mu       sync.Mutex
	ended    sync.Cond // on mu: granting went false
	running  int       // compactions granted and not done
	granting bool      // a goroutine offers compactions to the DB
	closed   bool      // unregistered

	wake chan struct{} // asks the granter to offer compactions now
	stop chan struct{} // closed by Unregister
	done chan struct{} // closed when the granter has returned
}

var (
	_ pebble.CompactionScheduler   = (*compactionGate)(nil)
	_ pebble.CompactionGrantHandle = (*compactionGate)(nil)
)

func newCompactionGate() *compactionGate {
	g := &compactionGate{
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	g.ended.L = &g.mu
	return g
}

// held reports whether compactions wait for restores.
func (g *compactionGate) held() bool {
	return g.restoring.Load() > 0 && g.l0.Load() < restoreL0Sublevels
}

// allowed returns how many compactions may run at once now. It takes no
// lock of the DB's (Pebble calls TrySchedule with its own held).
func (g *compactionGate) allowed() int {
	if g.held() {
		return 0
	}
	return g.db.GetAllowedWithoutPermission()
}

// startRestore and endRestore count a loader's restore.
func (g *compactionGate) startRestore() {
	if g.restoring.Add(1) == 1 {
		g.poke() // l0 is from the last restore, if any
	}
}

func (g *compactionGate) endRestore() {
	if g.restoring.Add(-1) == 0 {
		g.poke()
	}
}

// measure reads L0's sublevels into l0, during restores. Only the granter
// calls it: it takes the DB's lock (so not from TrySchedule), and must not
// run once Unregister has returned (the DB is closing).
func (g *compactionGate) measure() {
	if g.restoring.Load() == 0 {
		return
	}
	if d := g.pdb.Load(); d != nil {
		g.l0.Store(d.Metrics().Levels[0].Sublevels)
	}
}

// poke asks the granter to offer compactions now.
func (g *compactionGate) poke() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// Register implements pebble.CompactionScheduler: Pebble calls it once, in
// Open.
func (g *compactionGate) Register(_ int, db pebble.DBForCompaction) {
	g.db = db
	go g.granter()
}

// Unregister implements pebble.CompactionScheduler: Pebble calls it once,
// in Close. No call into the DB runs after it returns.
func (g *compactionGate) Unregister() {
	close(g.stop)
	<-g.done
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for g.granting {
		g.ended.Wait()
	}
}

// TrySchedule implements pebble.CompactionScheduler: Pebble asks to run a
// compaction.
func (g *compactionGate) TrySchedule() (bool, pebble.CompactionGrantHandle) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.allowed() <= g.running {
		return false, nil
	}
	g.running++
	return true, g
}

// UpdateGetAllowedWithoutPermission implements pebble.CompactionScheduler:
// more compactions may run (a flush ended, adding to L0).
func (g *compactionGate) UpdateGetAllowedWithoutPermission() { g.poke() }

// Started implements pebble.CompactionGrantHandle.
func (g *compactionGate) Started() {}

// MeasureCPU implements pebble.CompactionGrantHandle.
func (g *compactionGate) MeasureCPU(pebble.CompactionGoroutineKind) {}

// CumulativeStats implements pebble.CompactionGrantHandle: the gate does not
// pace compactions.
func (g *compactionGate) CumulativeStats(pebble.CompactionGrantHandleStats) {}

// Done implements pebble.CompactionGrantHandle: a compaction ended.
func (g *compactionGate) Done() {
	g.mu.Lock()
	g.running--
	g.mu.Unlock()
	g.grant()
}

// granter offers compactions every gateTick and when poked (a restore
// started, ended or ingested, a flush or compaction ended), until
// Unregister.
func (g *compactionGate) granter() {
	defer close(g.done)
	t := time.NewTicker(gateTick)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
		case <-g.wake:
		}
		g.measure()
		g.grant()
	}
}

// grant offers the DB the compactions that may run besides those running.
// One goroutine offers at a time, without the gate's lock: the DB's
// GetWaitingCompaction and Schedule take the DB's.
func (g *compactionGate) grant() {
	g.mu.Lock()
	for g.granting && !g.closed {
		g.ended.Wait()
	}
	n := 0
	if !g.closed {
		n = g.allowed() - g.running
	}
	if n <= 0 {
		g.mu.Unlock()
		return
	}
	g.granting = true
	g.mu.Unlock()
	for ; n > 0; n-- {
		if waiting, _ := g.db.GetWaitingCompaction(); !waiting {
			break
		}
		// Counted before it starts: it may end before Schedule returns.
		g.mu.Lock()
		g.running++
		g.mu.Unlock()
		if !g.db.Schedule(g) {
			g.mu.Lock()
			g.running--
			g.mu.Unlock()
			break
		}
	}
	g.mu.Lock()
	g.granting = false
	g.ended.Broadcast()
	g.mu.Unlock()
}
