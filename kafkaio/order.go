package kafkaio

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kstreamgo/kstream/internal/graph"
)

// batch is the records of one topic (the task's partition of it) from one
// poll: raw[start:end], of which raw[start:next] are processed and
// raw[start:reported] counted in the metrics.
type batch struct {
	topic                      string
	start, next, reported, end int
}

// inTimeOrder processes a task's batches in the order of Kafka Streams'
// PartitionGroup: record by record, the next one is the head of the input
// whose head has the smallest timestamp (ties go to the batch that came
// first), and each input keeps its offset order. So a join or merge sees
// its inputs interleaved by time, not one topic's whole batch before
// another's, which would advance stream time past the other input's
// records and drop them as late. It calls fn with the longest runs of one
// batch that this order allows, and stops at fn's first error.
//
// inputs are the topics the task reads. When one of them has no record
// left and wait says to wait for it, inTimeOrder stops and reports that the
// task holds the rest back (see MaxTaskIdle). A task reading one topic
// never waits.
func inTimeOrder(raw []graph.RawRecord, bs []batch, inputs []string, wait func(topic string) bool,
	fn func(b *batch, from, to int) error) (held bool, err error) {
	for {
		if len(inputs) > 1 {
			for _, topic := range inputs {
				if !hasRecords(bs, topic) && wait(topic) {
					return unprocessed(bs) > 0, nil
				}
			}
		}
		q := -1
		for i := range bs {
			if ready(bs, i) && (q < 0 || raw[bs[i].next].Timestamp < raw[bs[q].next].Timestamp) {
				q = i
			}
		}
		if q < 0 {
			return false, nil
		}
		// The run goes on while its records come before every other
		// ready head: strictly before the heads of earlier batches,
		// which win ties.
		b := &bs[q]
		lim, strict, others := int64(0), false, false
		for i := range bs {
			if i == q || !ready(bs, i) {
				continue
			}
			h := raw[bs[i].next].Timestamp
			switch {
			case !others || h < lim:
				lim, strict, others = h, i < q, true
			case h == lim && i < q:
				strict = true
			}
		}
		end := b.end
		if others {
			for end = b.next + 1; end < b.end; end++ {
				if ts := raw[end].Timestamp; ts > lim || (ts == lim && strict) {
					break
				}
			}
		}
		if err := fn(b, b.next, end); err != nil {
			return false, err
		}
		b.next = end
	}
}

// ready reports whether batch i has records left and no earlier batch of
// its topic (its partition, fetched twice) has.
func ready(bs []batch, i int) bool {
	if bs[i].next >= bs[i].end {
		return false
	}
	for j := range i {
		if bs[j].topic == bs[i].topic && bs[j].next < bs[j].end {
			return false
		}
	}
	return true
}

// hasRecords reports whether a batch of topic has records left.
func hasRecords(bs []batch, topic string) bool {
	for i := range bs {
		if bs[i].topic == topic && bs[i].next < bs[i].end {
			return true
		}
	}
	return false
}

// unprocessed counts the records of bs not processed yet.
func unprocessed(bs []batch) int {
	n := 0
	for i := range bs {
		n += bs[i].end - bs[i].next
	}
	return n
}

// Bounds of a task's wait for its inputs (see MaxTaskIdle): how long it
// waits at least for records known to exist (longer than a transaction of
// a killed instance can keep the group's offsets pending: its timeout is
// 10 s), how many records it holds back before it pauses fetching them,
// how often it looks again at the lag of an input it waits for.
const (
	minIdleLimit = 30 * time.Second
	minHeldCap   = 10_000
	reprobeEvery = time.Second
)

// waiter returns the wait function of inTimeOrder for task t at now: wait
// for an input whose lag is unknown or positive, or (maxIdle > 0) for a
// caught-up one until maxIdle has passed since it was first found caught up
// with nothing buffered (t.idleSince), unless the task has waited its
// limit: then it reports enforced (Kafka Streams' enforced processing: the
// inputs may go out of time order). The wait function sets t.gaveUp when it
// does not wait for a caught-up input (any more): if the task then
// processes records, that is enforced processing too, as Kafka Streams
// counts it.
func (a *App) waiter(t *task, now time.Time) (wait func(topic string) bool, enforced bool) {
	idle := a.cfg.maxTaskIdle
	never := func(string) bool { return false }
	if idle < 0 {
		return never, false
	}
	if !t.waitSince.IsZero() && now.Sub(t.waitSince) >= max(idle, minIdleLimit) {
		return never, true
	}
	return func(topic string) bool {
		if lag, ok := t.lag[topic]; !ok || lag > 0 {
			return true
		}
		if idle > 0 {
			since, ok := t.idleSince[topic]
			if !ok {
				if t.idleSince == nil {
					t.idleSince = map[string]time.Time{}
				}
				since = now
				t.idleSince[topic] = now
			}
			if now.Sub(since) < idle {
				return true
			}
		}
		t.gaveUp = true
		return false
	}, false
}

// probeLags finds out, for the tasks about to run, the lag of each input
// that has no record buffered and no lag known yet: an input nothing was
// fetched from, caught up or not (franz-go returns no empty fetch). Its
// lag is its end offset (under exactly-once, the last stable offset) minus
// the consumer's position: the offset after the last record polled, or
// else the group's committed offset, or else the log start. It runs on the
// loop goroutine; after a failure, it waits a second before trying again
// (meanwhile the inputs' lags stay unknown, so their tasks wait for them,
// up to their limit).
func (a *App) probeLags(tasks []*task) {
	now := time.Now()
	// reprobe: a task that has waited a while looks again at the inputs
	// it waits for, once in a while: a lag learned before may be stale
	// (the group's offsets were pending, a fetch was cut short).
	reprobe := func(t *task) bool {
		return !t.waitSince.IsZero() && now.Sub(t.waitSince) >= reprobeEvery && now.Sub(t.probedAt) >= reprobeEvery
	}
	var topics []string
	for _, t := range tasks {
		for _, topic := range t.inputs {
			if _, known := t.lag[topic]; (!known || reprobe(t)) && !hasRecords(t.batches, topic) && !slices.Contains(topics, topic) {
				topics = append(topics, topic)
			}
		}
	}
	if len(topics) == 0 || now.Before(a.probeAfter) {
		return
	}
	ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
	defer cancel()
	var ends, starts kadm.ListedOffsets
	var err error
	if a.cfg.exactlyOnce {
		ends, err = a.adm.ListCommittedOffsets(ctx, topics...)
	} else {
		ends, err = a.adm.ListEndOffsets(ctx, topics...)
	}
	if err == nil {
		starts, err = a.adm.ListStartOffsets(ctx, topics...)
	}
	if err == nil {
		err = cmp.Or(ends.Error(), starts.Error())
	}
	if err != nil {
		a.log.Warn("kstream: listing the offsets of inputs to wait for", "topics", topics, "error", err)
		a.probeAfter = time.Now().Add(time.Second)
		return
	}
	polled, committed := a.cl.UncommittedOffsets(), a.cl.CommittedOffsets()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range tasks {
		p := t.rt.ID.Partition
		again := reprobe(t)
		if again {
			t.probedAt = now
		}
		for _, topic := range t.inputs {
			if _, known := t.lag[topic]; (known && !again) || hasRecords(t.batches, topic) {
				continue
			}
			end, ok1 := ends.Lookup(topic, p)
			start, ok2 := starts.Lookup(topic, p)
			if !ok1 || !ok2 {
				continue
			}
			pos := start.Offset
			if o, ok := polled[topic][p]; ok && o.Offset >= 0 {
				pos = o.Offset
			} else if o, ok := committed[topic][p]; ok && o.Offset >= 0 {
				pos = o.Offset
			}
			t.lag[topic] = max(end.Offset-pos, 0)
		}
	}
}

// pauseHeld pauses fetching the partitions of which tasks hold a cap of
// records back while they wait for another input, as Kafka Streams pauses
// a partition whose buffer is full, and resumes those of tasks that no
// longer wait, or were dropped (resumeTask). franz-go drops what it
// buffered of a paused partition and fetches it again on resume. It runs on
// the loop goroutine.
func (a *App) pauseHeld(tasks []*task) {
	capacity := max(4*a.cfg.maxBatch, minHeldCap)
	var pause map[string][]int32
	a.mu.Lock()
	for _, t := range tasks {
		switch {
		case t.paused == nil && !t.waitSince.IsZero() && unprocessed(t.batches) >= capacity:
			t.paused = map[string][]int32{}
			for _, topic := range t.inputs {
				if hasRecords(t.batches, topic) {
					t.paused[topic] = []int32{t.rt.ID.Partition}
					if pause == nil {
						pause = map[string][]int32{}
					}
					pause[topic] = append(pause[topic], t.rt.ID.Partition)
				}
			}
			a.log.Info("kstream: task holds its cap of records back waiting for an input: pausing their partitions",
				"task", t.rt.ID.String(), "held", unprocessed(t.batches), "paused", t.paused)
		case t.paused != nil && t.waitSince.IsZero():
			a.resumeTask(t)
		}
	}
	resume := a.unpause
	a.unpause = nil
	a.mu.Unlock()
	if len(resume) > 0 {
		a.cl.ResumeFetchPartitions(resume)
	}
	if len(pause) > 0 {
		a.cl.PauseFetchPartitions(pause)
	}
}

// resumeTask has pauseHeld resume the partitions it paused for t, which no
// longer waits or is dropped: a partition left paused would stay so if it
// came back. Called with App.mu held.
func (a *App) resumeTask(t *task) {
	for topic, ps := range t.paused {
		if a.unpause == nil {
			a.unpause = map[string][]int32{}
		}
		a.unpause[topic] = append(a.unpause[topic], ps...)
	}
	t.paused = nil
}
