package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreamgo/kstream/kafkaio"
)

// cluster is where one run happens: a fresh embedded cluster, or the
// external brokers with a fresh prefix for topics and groups, which close
// deletes.
type cluster struct {
	cancel  context.CancelFunc // the run's context
	brokers []string
	emb     *kafkaio.Embedded
	admCl   *kgo.Client
	adm     *kadm.Client
	prefix  string
	topics  []string
	groups  []string
	closed  *closedClusters // where close reports an embedded cluster
}

// closedClusters counts the embedded clusters closed and not yet garbage.
// kfake's timers (a fetch's wait, 5 s by default; a group member's session)
// keep a closed cluster, and its in-memory log, reachable until they fire: a
// run that starts then has a heap up to several logs larger, collects
// garbage that much less often, and spends its time in page faults on fresh
// memory (measured: 190,000 faults and half the records/s, against 15,000
// faults for the same run on a settled heap). For the same reason the
// harness runs with GODEBUG madvdontneed=0 (reexecMadvFree): the heap that
// the runtime gives back between runs goes with MADV_FREE, and stays mapped
// for the next run to reuse without faulting it in again, where
// MADV_DONTNEED (the default) still cost 10,000-140,000 faults per run.
type closedClusters struct{ pending atomic.Int64 }

// add tracks a cluster that was just closed.
func (cc *closedClusters) add(c *kfake.Cluster) {
	cc.pending.Add(1)
	runtime.AddCleanup(c, func(p *atomic.Int64) { p.Add(-1) }, &cc.pending)
}

// settle collects garbage until every closed cluster is gone, or for at
// most timeout: a measured run starts from the same heap whatever ran
// before it.
func (cc *closedClusters) settle(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		runtime.GC()
		if cc.pending.Load() == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// warmHeap grows the heap by n bytes, touching every page, and frees it
// again: the first run of a process would otherwise pay for faulting in the
// heap that every later run reuses (measured: 130,000 faults, 0.9 against
// 0.75 CPU seconds per million records, on the first of eight runs).
func warmHeap(n int) {
	const chunk = 1 << 20
	blocks := make([][]byte, 0, n/chunk)
	for range n / chunk {
		b := make([]byte, chunk)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		blocks = append(blocks, b)
	}
	runtime.KeepAlive(blocks) // the blocks are garbage after this
	runtime.GC()
}

// openCluster opens the cluster of one run, and the run's context: ctx,
// ending after cfg.timeout or when the cluster closes.
func openCluster(ctx context.Context, cfg *config) (context.Context, *cluster, error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	c := &cluster{brokers: cfg.brokers, prefix: "bench-" + hex.EncodeToString(b), closed: cfg.closed}
	ctx, c.cancel = context.WithTimeout(ctx, cfg.timeout)
	if len(c.brokers) == 0 {
		e, err := kafkaio.StartEmbedded(ctx)
		if err != nil {
			c.cancel()
			return ctx, nil, err
		}
		c.emb, c.brokers = e, e.Seeds()
	}
	var err error
	if c.admCl, err = kgo.NewClient(kgo.SeedBrokers(c.brokers...)); err != nil {
		c.close()
		return ctx, nil, fmt.Errorf("bench: admin client: %w", err)
	}
	c.adm = kadm.NewClient(c.admCl)
	return ctx, c, nil
}

// name returns a topic or group name unique to this run.
func (c *cluster) name(s string) string { return c.prefix + "-" + s }

func (c *cluster) createTopics(ctx context.Context, partitions int32, topics ...string) error {
	c.topics = append(c.topics, topics...)
	if err := kafkaio.CreateTopics(ctx, c.brokers, partitions, topics); err != nil {
		return err
	}
	// A real broker may need a moment before every partition has a leader.
	for deadline := time.Now().Add(30 * time.Second); ; {
		ends, err := c.adm.ListEndOffsets(ctx, topics...)
		n := 0
		ends.Each(func(kadm.ListedOffset) { n++ })
		if err == nil && ends.Error() == nil && n == int(partitions)*len(topics) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: topics %v not ready: %v", topics, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// close removes what the run created on external brokers, or stops the
// embedded cluster, and ends the run's context.
func (c *cluster) close() {
	defer c.cancel()
	if c.emb != nil {
		if c.admCl != nil {
			c.admCl.Close()
		}
		c.emb.Close()
		c.closed.add(c.emb.Cluster())
		return
	}
	if c.adm == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if len(c.groups) > 0 {
		_, _ = c.adm.DeleteGroups(ctx, c.groups...)
	}
	// The topics created here, and the internal topics of the apps (their
	// names start with a group name, hence with the prefix).
	topics := c.topics
	if listed, err := c.adm.ListTopics(ctx); err == nil {
		for _, t := range listed.Names() {
			if strings.HasPrefix(t, c.prefix) && !slices.Contains(topics, t) {
				topics = append(topics, t)
			}
		}
	}
	if len(topics) > 0 {
		_, _ = c.adm.DeleteTopics(ctx, topics...)
	}
	c.admCl.Close()
}

// endOffsets sums the end offsets (high watermarks) of topic.
func (c *cluster) endOffsets(ctx context.Context, topic string) (int64, error) {
	l, err := c.adm.ListEndOffsets(ctx, topic)
	return sumOffsets(l, err)
}

// stableOffsets sums the last stable offsets of topic: what a
// read-committed consumer can read (transaction markers included).
func (c *cluster) stableOffsets(ctx context.Context, topic string) (int64, error) {
	l, err := c.adm.ListCommittedOffsets(ctx, topic)
	return sumOffsets(l, err)
}

func sumOffsets(l kadm.ListedOffsets, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	if err := l.Error(); err != nil {
		return 0, err
	}
	var n int64
	l.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n, nil
}

// consumed reports whether group has committed every record of topics.
func (c *cluster) consumed(ctx context.Context, group string, topics []string) bool {
	for _, t := range topics {
		if lag, err := c.lag(ctx, group, t); err != nil || lag > 0 {
			return false
		}
	}
	return true
}

// lag returns how many records of topic group has not committed.
func (c *cluster) lag(ctx context.Context, group, topic string) (int64, error) {
	committed, err := c.adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, err
	}
	ends, err := c.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	if err := ends.Error(); err != nil {
		return 0, err
	}
	var lag int64
	ends.Each(func(o kadm.ListedOffset) {
		at := int64(0)
		if r, ok := committed.Lookup(o.Topic, o.Partition); ok && r.Err == nil && r.At >= 0 {
			at = r.At
		}
		lag += max(o.Offset-at, 0)
	})
	return lag, nil
}
