package state_test

import (
	"fmt"
	"log"

	"github.com/kstreamgo/kstream/serde"
	"github.com/kstreamgo/kstream/state"
)

// Open a DB, take a view of one store partition, and use it through a typed
// KV with an order-preserving key serde.
func ExampleOpen() {
	// A real application passes its state directory and no InMemory.
	db, err := state.Open("example", state.InMemory(), state.MemoryBudget(64<<20))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	counts := state.NewKV(db.Store("counts", 0), serde.OrderedString, serde.Int64)
	for _, w := range []string{"pear", "apple", "fig", "apple"} {
		n, _, err := counts.Get(w)
		if err != nil {
			log.Fatal(err)
		}
		if err := counts.Put(w, n+1); err != nil {
			log.Fatal(err)
		}
	}
	for w, n := range counts.Range("b", "z") {
		fmt.Println(w, n)
	}
	if err := counts.Err(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// fig 1
	// pear 1
}

// A task's writes and its checkpoint, committed atomically.
func ExampleBatch() {
	db, err := state.Open("example", state.InMemory())
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	store := db.Store("totals", 3)

	batch := db.NewBatch()
	defer batch.Close()
	buffered := batch.Store(store)
	if err := buffered.Put([]byte("k"), []byte("v1")); err != nil {
		log.Fatal(err)
	}
	if err := batch.SetCheckpoint("0_3", map[string]int64{"input/3": 1042}); err != nil {
		log.Fatal(err)
	}
	_, inBatch, _ := buffered.Get([]byte("k"))
	_, inDB, _ := store.Get([]byte("k"))
	fmt.Println("before commit:", inBatch, inDB)

	if err := batch.Commit(); err != nil {
		log.Fatal(err)
	}
	v, _, _ := store.Get([]byte("k"))
	offsets, _, err := db.Checkpoint("0_3")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("after commit:", string(v), offsets)
	// Output:
	// before commit: true false
	// after commit: v1 map[input/3:1042]
}
