package kafkaio

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/internal/runtime"
)

// restoreChunk is how many changelog records are applied at once.
const restoreChunk = 4096

// restore fills a new task's stores from their changelogs, from the start to
// the end that is committed now (the last stable offset), before the task
// processes anything.
func (a *App) restore(ctx context.Context, t *runtime.Task) error {
	for store, topic := range t.Changelogs() {
		p := t.ID.Partition
		start, end, err := a.offsetRange(ctx, topic, p)
		if err != nil {
			return fmt.Errorf("kafkaio: restoring %s: %w", store, err)
		}
		if spec := t.StoreSpec(store); spec != nil && spec.FromSource {
			// The topic is also the task's input: restore only what the
			// group has committed; processing takes it from there.
			committed, err := a.committedOffset(ctx, topic, p)
			if err != nil {
				return fmt.Errorf("kafkaio: restoring %s: %w", store, err)
			}
			end = min(end, committed)
		}
		a.log.Debug("kstream: changelog range", "topic", topic, "partition", p, "start", start, "end", end)
		if end <= start {
			continue
		}
		began := time.Now()
		n, err := a.restorePartition(ctx, t, store, topic, p, end)
		if err != nil {
			return err
		}
		a.restored.Add(n)
		a.log.Info("kstream: restored store", "store", store, "task", t.ID.String(), "records", n,
			"end_offset", end, "took", time.Since(began))
	}
	return nil
}

// committedOffset returns the group's committed offset of a partition (0 if
// none).
func (a *App) committedOffset(ctx context.Context, topic string, p int32) (int64, error) {
	offs, err := a.adm.FetchOffsets(ctx, a.cfg.appID)
	if err != nil {
		return 0, err
	}
	if o, ok := offs.Lookup(topic, p); ok && o.Err == nil && o.At > 0 {
		return o.At, nil
	}
	return 0, nil
}

// offsetRange returns a partition's log start offset and last stable offset,
// retrying while a new topic's metadata propagates.
func (a *App) offsetRange(ctx context.Context, topic string, p int32) (start, end int64, err error) {
	for attempt := 0; ; attempt++ {
		var starts, ends kadm.ListedOffsets
		if starts, err = a.adm.ListStartOffsets(ctx, topic); err == nil {
			ends, err = a.adm.ListCommittedOffsets(ctx, topic)
		}
		if err == nil {
			so, ok1 := starts.Lookup(topic, p)
			eo, ok2 := ends.Lookup(topic, p)
			switch {
			case !ok1 || !ok2:
				err = fmt.Errorf("no offsets for %s/%d", topic, p)
			case so.Err != nil:
				err = so.Err
			case eo.Err != nil:
				err = eo.Err
			default:
				return so.Offset, eo.Offset, nil
			}
		}
		if attempt >= 100 || ctx.Err() != nil {
			return 0, 0, fmt.Errorf("listing offsets of %s/%d: %w", topic, p, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (a *App) restorePartition(ctx context.Context, t *runtime.Task, store, topic string, p int32, end int64) (int64, error) {
	a.restoreCl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().AtStart()}})
	defer a.restoreCl.RemoveConsumePartitions(map[string][]int32{topic: {p}})
	var n int64
	buf := make([]graph.RawRecord, 0, restoreChunk)
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if err := t.Restore(store, buf); err != nil {
			return err
		}
		n += int64(len(buf))
		clear(buf)
		buf = buf[:0]
		return nil
	}
	for {
		fetches := a.restoreCl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if fetches.IsClientClosed() {
			return n, fmt.Errorf("kafkaio: restoring %s: client closed", store)
		}
		var ferr error
		fetches.EachError(func(ft string, fp int32, err error) {
			if ft == topic && fp == p {
				ferr = err
			}
		})
		if ferr != nil {
			return n, fmt.Errorf("kafkaio: restoring %s from %s/%d: %w", store, topic, p, ferr)
		}
		done := false
		fetches.EachRecord(func(r *kgo.Record) {
			if done || r.Topic != topic || r.Partition != p {
				return
			}
			if r.Offset+1 >= end {
				done = true
			}
			if r.Offset >= end || r.Attrs.IsControl() {
				return
			}
			buf = append(buf, graph.RawRecord{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp.UnixMilli(), Offset: r.Offset})
			if len(buf) == restoreChunk {
				if err := flush(); err != nil {
					ferr = err
					done = true
				}
			}
		})
		if ferr != nil {
			return n, ferr
		}
		if done {
			return n, flush()
		}
	}
}
