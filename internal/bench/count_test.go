package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

// TestMain runs the count child when the test binary is re-executed as one
// (TestCountChild).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == countChildArg {
		os.Exit(countChild(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestCountWant checks countWant against counting the generated keys.
func TestCountWant(t *testing.T) {
	for _, keys := range []int{1, 9, 10, 11, 1000, 4099} {
		got := map[string]int64{}
		var key []byte
		for i := range countRecords(keys) {
			key, _ = countKey(key, i, keys)
			got[string(key)]++
		}
		if len(got) != keys {
			t.Fatalf("keys=%d: %d distinct keys generated", keys, len(got))
		}
		for k := range keys {
			name := fmt.Sprintf("key-%d", k)
			if want := countWant(k, keys); got[name] != want {
				t.Fatalf("keys=%d: %s counted %d times, countWant says %d", keys, name, got[name], want)
			}
		}
	}
}

// TestCountWorkload runs the count workload in this process, small: 200k
// keys over 8 tasks, and checks a sample of the final counts (countCheck),
// then that reading a wrong count fails.
func TestCountWorkload(t *testing.T) {
	p := countParams{Keys: 200_000, Partitions: 8, Budget: 128 << 20, Dir: t.TempDir()}
	var last int64
	res, err := countWorkload(p, func(n int64) { last = n })
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(countRecords(p.Keys)); res.Records != want || last != want {
		t.Errorf("%d records, progress %d; want %d", res.Records, last, want)
	}
	if res.Checked < countSample || res.Commits < 2 || res.Seconds <= 0 {
		t.Errorf("result %+v: want %d keys checked, several commits", res, countSample)
	}
	t.Logf("%d records in %.2f s (%.0f/s), %d commits, Go peak %d MiB", res.Records, res.Seconds,
		float64(res.Records)/res.Seconds, res.Commits, res.PeakGoBytes>>20)
}

// TestCountChild runs the workload in a child process, as the harness does,
// and checks the row made of its result.
func TestCountChild(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := countParams{Keys: 20_000, Partitions: 4, Budget: 64 << 20, Dir: t.TempDir()}
	var done atomic.Int64
	res, err := runCountChild(context.Background(), exe, p, &done, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if res.Keys != p.Keys || res.Records != int64(countRecords(p.Keys)) || res.Checked == 0 {
		t.Errorf("child result %+v", res)
	}
	if _, err := os.Stat("/proc/self/status"); err == nil && res.PeakRSS <= 0 {
		t.Errorf("no peak RSS from the child: %+v", res)
	}
	r := row{}
	fillCountRow(&r, res)
	if r.RecordsPerSec <= 0 || !strings.Contains(r.Note, "within budget+128MiB: ") {
		t.Errorf("row %+v", r)
	}
	bad := countParams{Keys: 0, Partitions: 1, Budget: 64 << 20, Dir: t.TempDir()}
	if _, err := runCountChild(context.Background(), exe, bad, &done, io.Discard); err == nil {
		t.Error("a child with no keys did not fail")
	}
}

func TestParseConfigCount(t *testing.T) {
	cfg, err := parseConfig([]string{"-scenarios", "count", "-count-keys", "5", "-count-partitions", "2", "-count-budget", "100"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.countKeys != 5 || cfg.countPartitions != 2 || cfg.countBudget != 100<<20 || len(cfg.scenarios) != 1 {
		t.Errorf("count flags: %+v", cfg)
	}
	cfg, err = parseConfig(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.countKeys != 10_000_000 || cfg.countPartitions != 64 || cfg.countBudget != 256<<20 {
		t.Errorf("count defaults: %+v", cfg)
	}
	for _, s := range cfg.scenarios {
		if s == scenarioCount {
			t.Error("count runs by default")
		}
	}
	if _, err := parseConfig([]string{"-count-keys", "0"}, io.Discard); err == nil {
		t.Error("-count-keys 0: no error")
	}
}
