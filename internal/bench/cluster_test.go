package main

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestGodebugSet(t *testing.T) {
	for _, tc := range []struct {
		env, want []string
	}{
		{[]string{"A=1"}, []string{"A=1", "GODEBUG=madvdontneed=0"}},
		{[]string{"GODEBUG=gctrace=1", "B=2"}, []string{"B=2", "GODEBUG=gctrace=1,madvdontneed=0"}},
		{[]string{"GODEBUG=madvdontneed=1,gctrace=1"}, []string{"GODEBUG=gctrace=1,madvdontneed=0"}},
		{[]string{"GODEBUG="}, []string{"GODEBUG=madvdontneed=0"}},
	} {
		if got := godebugSet(tc.env, "madvdontneed", "0"); !slices.Equal(got, tc.want) {
			t.Errorf("godebugSet(%q) = %q, want %q", tc.env, got, tc.want)
		}
	}
}

// TestSettleWaitsForClosedClusters closes an embedded cluster that a
// client used, and checks that settle returns once it is garbage.
func TestSettleWaitsForClosedClusters(t *testing.T) {
	cfg := &config{timeout: time.Minute, closed: &closedClusters{}}
	ctx, c, err := openCluster(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.createTopics(ctx, 1, c.name("t")); err != nil {
		c.close()
		t.Fatal(err)
	}
	c.close()
	if n := cfg.closed.pending.Load(); n != 1 {
		t.Fatalf("%d clusters pending after close, want 1", n)
	}
	start := time.Now()
	cfg.closed.settle(time.Minute)
	if n := cfg.closed.pending.Load(); n != 0 {
		t.Fatalf("%d clusters pending after settle (%v), want 0", n, time.Since(start))
	}
}
