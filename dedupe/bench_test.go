package dedupe_test

import (
	"strconv"
	"testing"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/dedupe"
	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/internal/runtime"
	"github.com/kstreamgo/kstream/serde"
	"github.com/kstreamgo/kstream/state"
)

// The benchmarks drive a task of the runtime directly (as kafkaio does,
// without kstest's topic bookkeeping): one op is one record through the
// source (decoding a string key and value), the operator, and a Foreach.
// BenchmarkByID's cost is its figure minus BenchmarkPassthrough's, which
// runs a Process node that forwards every record.

// benchTask builds in -> op -> Foreach on one task, with in-memory stores,
// or with stores in a Pebble DB if db is set.
func benchTask(b *testing.B, db *state.DB, op func(kstream.Stream[string, string]) kstream.Stream[string, string]) *runtime.Task {
	b.Helper()
	bld := kstream.NewBuilder()
	op(kstream.Source(bld, "in", serde.String, serde.String)).Foreach(func(string, string) {})
	topo, err := bld.Build()
	if err != nil {
		b.Fatal(err)
	}
	task, err := runtime.NewTask(topo, &runtime.Config{AppID: "bench", DB: db}, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = task.Close() })
	return task
}

// runRecords pipes one record per op, with timestamps one millisecond
// apart; record i has ID ids[idx(i)]. Every 1024 records it drops the
// task's output (the changelog records kafkaio would produce) and commits
// (which applies a DB's write batch).
func runRecords(b *testing.B, task *runtime.Task, ids [][]byte, idx func(i int) int) {
	b.Helper()
	rec := make([]graph.RawRecord, 1)
	key := []byte("key")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		rec[0] = graph.RawRecord{Key: key, Value: ids[idx(i)], Timestamp: int64(i), Offset: int64(i)}
		if err := task.Process("in", rec); err != nil {
			b.Fatal(err)
		}
		if i%1024 == 1023 {
			task.Output().Reset()
			if err := task.Commit(nil); err != nil {
				b.Fatal(err)
			}
		}
		i++
	}
}

func benchIDs(n int) [][]byte {
	ids := make([][]byte, n)
	for i := range ids {
		ids[i] = []byte("payment-" + strconv.Itoa(i))
	}
	return ids
}

func BenchmarkByID(b *testing.B) {
	ids := benchIDs(1 << 16)
	for _, bb := range []struct {
		name   string
		idx    func(i int) int
		pebble bool
	}{
		// Every record a new ID: a read, two writes, and (amortized) the
		// expiry of one ID; about 1000 IDs are live.
		{"new", func(i int) int { return i % len(ids) }, false},
		// Every ID twice in a row: half the records are duplicates.
		{"half-duplicates", func(i int) int { return (i / 2) % len(ids) }, false},
		// 100 IDs over and over, within retention: all but the first
		// hundred records are duplicates (a read each).
		{"duplicates", func(i int) int { return i % 100 }, false},
		// New IDs on Pebble (behind its cache), as kafkaio with a StateDir.
		{"new-pebble", func(i int) int { return i % len(ids) }, true},
	} {
		b.Run(bb.name, func(b *testing.B) {
			retention := time.Second
			if bb.name == "duplicates" {
				retention = 1000 * time.Hour
			}
			var db *state.DB
			if bb.pebble {
				var err error
				if db, err = state.Open(b.TempDir(), state.MemoryBudget(64<<20)); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = db.Close() })
			}
			task := benchTask(b, db, func(s kstream.Stream[string, string]) kstream.Stream[string, string] {
				return dedupe.ByID(s, valueID, retention, kstream.Named("dedupe"))
			})
			runRecords(b, task, ids, bb.idx)
		})
	}
}

func BenchmarkPassthrough(b *testing.B) {
	ids := benchIDs(1 << 16)
	task := benchTask(b, nil, func(s kstream.Stream[string, string]) kstream.Stream[string, string] {
		return kstream.Process(s, func() kstream.Processor[string, string, string, string] { return &passer{} })
	})
	runRecords(b, task, ids, func(i int) int { return i % len(ids) })
}

// passer forwards every record.
type passer struct {
	ctx *kstream.ProcessorContext[string, string]
}

func (p *passer) Init(ctx *kstream.ProcessorContext[string, string]) error {
	p.ctx = ctx
	return nil
}

func (p *passer) Process(r kstream.Record[string, string]) error {
	p.ctx.Forward(r)
	return nil
}

func (p *passer) Close() error { return nil }
