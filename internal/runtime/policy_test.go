package runtime_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/internal/runtime"
	"github.com/kstreamgo/kstream/serde"
)

// TestSkipLogsPanicStack: a record skipped by the error policy is logged
// with its error; for a panic, with the stack at the panic too, which the
// error's one line cannot hold.
func TestSkipLogsPanicStack(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.MapValues(kstream.Source(b, "in", serde.String, serde.String), func(v string) string {
		if v == "boom" {
			panic("boom")
		}
		return v
	}, kstream.Named("check")).To("out", nil, nil)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	skip := func(*graph.RecordError, *graph.RawRecord) runtime.Action { return runtime.Skip }
	task, err := runtime.NewTask(topo, &runtime.Config{AppID: "app", OnError: skip, Logger: slog.New(slog.NewJSONHandler(&log, nil))}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer task.Close()
	recs := []graph.RawRecord{{Key: []byte("k"), Value: []byte("boom"), Offset: 7}, {Key: []byte("k"), Value: []byte("fine"), Offset: 8}}
	if err := task.Process("in", recs); err != nil {
		t.Fatal(err)
	}
	if n := task.Skipped.Load(); n != 1 {
		t.Errorf("skipped %d records, want 1", n)
	}
	var entry struct{ Msg, Error, Stack string }
	if err := json.Unmarshal(log.Bytes(), &entry); err != nil {
		t.Fatalf("log %q: %v", log.String(), err)
	}
	if entry.Msg != "kstream: skipping record" || !strings.Contains(entry.Error, "in/0@7 in node check: panic: boom [in runtime_test.TestSkipLogsPanicStack.func1 at policy_test.go:") ||
		!strings.Contains(entry.Stack, "policy_test.go") {
		t.Errorf("log entry %+v", entry)
	}
}
