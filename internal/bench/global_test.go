package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGlobalScenario runs the global scenario small on the embedded cluster,
// for each backend: the first bootstrap reads every record, and a restart
// reads them all again in memory and none from the state DB.
func TestGlobalScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs embedded clusters")
	}
	ctx, cfg, prog := smallRestoreRun(t, t.TempDir())
	for _, backend := range []string{backendMemory, backendPebble} {
		raw, first, again, streams, err := runGlobal(ctx, cfg, prog, backend, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", backend, err)
		}
		if streams != nil {
			t.Errorf("%s: a Kafka Streams row with -kafka-streams off: %+v", backend, *streams)
		}
		want := map[string]int64{backendMemory: 5000, backendPebble: 0}[backend]
		if raw.Records != 5000 || first.Records != 5000 || first.StartupMs <= 0 || again.Records != want || again.StartupMs <= 0 {
			t.Errorf("%s: raw %d records, first bootstrap %d in %.0f ms, restart %d in %.0f ms; want 5000, 5000 and %d",
				backend, raw.Records, first.Records, first.StartupMs, again.Records, again.StartupMs, want)
		}
	}
}

// TestRestoreScenario runs the restore scenario small on the embedded
// cluster, for each backend, 3 times (-repeat): both rows count every
// record and are the medians of 3 runs, and the CPU profiles of both
// measured windows are written.
func TestRestoreScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs embedded clusters")
	}
	dir := t.TempDir()
	ctx, cfg, prog := smallRestoreRun(t, dir, "-cpuprofile", filepath.Join(dir, "cpu"), "-repeat", "3")
	for _, backend := range []string{backendMemory, backendPebble} {
		raw, ks, streams, err := runRestore(ctx, cfg, prog, backend, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", backend, err)
		}
		if streams != nil {
			t.Errorf("%s: a Kafka Streams row with -kafka-streams off: %+v", backend, *streams)
		}
		if raw.Records != 5000 || ks.Records != 5000 || raw.RecordsPerSec <= 0 || ks.RecordsPerSec <= 0 {
			t.Errorf("%s: raw %d records at %.0f/s, kstream %d at %.0f/s; want 5000 each", backend, raw.Records, raw.RecordsPerSec, ks.Records, ks.RecordsPerSec)
		}
		for _, r := range []row{raw, ks} {
			if !strings.Contains(r.Note, "median of 3 runs") {
				t.Errorf("%s %s: note %q, want the median of 3 runs", backend, r.Impl, r.Note)
			}
		}
		for _, impl := range []string{"hand", "kstream"} {
			name := filepath.Join(dir, "cpu-"+backend+"-restore-"+impl+".prof")
			if fi, err := os.Stat(name); err != nil || fi.Size() == 0 {
				t.Errorf("%s: CPU profile %s: %v (want a non-empty file)", backend, name, err)
			}
		}
	}
}

// smallRestoreRun returns what a test needs to run the restore and global
// scenarios on 5,000 records, writing to dir, with the flags of extra.
func smallRestoreRun(t *testing.T, dir string, extra ...string) (context.Context, *config, *progress) {
	t.Helper()
	cfg, err := parseConfig(append([]string{"-restore-records", "5000", "-kafka-streams", "off", "-out", dir}, extra...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	prog := newProgress(io.Discard)
	t.Cleanup(prog.stop)
	return ctx, cfg, prog
}
