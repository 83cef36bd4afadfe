package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kafkaio"
	"github.com/kstreamgo/kstream/serde"
)

// params configure one implementation run.
type params struct {
	eos        bool
	batch      int           // records per poll; 0: the client's default (Kafka Streams in the latency scenario)
	linger     time.Duration // producer linger; < 0: franz-go's default (10 ms)
	partitions int32         // input partitions: ready when all are assigned
	commit     time.Duration // commit interval; 0: kstream's default
	stateDir   string        // kstream's kafkaio.StateDir; "": in-memory stores
}

// defaultLinger marks "franz-go's default producer linger".
const defaultLinger = -1

// variant names the settings of a run.
func (p params) variant() string {
	v := fmt.Sprintf("batch=%d linger=%s", p.batch, lingerLabel(p.linger))
	if p.batch == 0 {
		v = "linger=" + lingerLabel(p.linger)
	}
	if p.commit > 0 {
		v += " commit=" + p.commit.String()
	}
	if p.stateDir != "" {
		v += " state=db"
	}
	return v
}

// commitInterval is kstream's default commit interval for p, which the
// hand-written loop copies.
func (p params) commitInterval() time.Duration {
	if p.commit > 0 {
		return p.commit
	}
	if p.eos || p.batch == 1 {
		return 100 * time.Millisecond
	}
	return 30 * time.Second
}

// pipeline is a running implementation: kstream or the hand-written loop.
type pipeline interface {
	// processed counts the input records processed so far.
	processed() int64
	// ready reports whether every input partition is assigned and set up.
	ready() bool
	// finished is closed when the pipeline stopped by itself (an error).
	finished() <-chan struct{}
	// stop stops the pipeline, committing its work, and returns its error.
	stop() error
	group() string
}

// runner runs a loop in a goroutine and keeps its result.
type runner struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	once   sync.Once
}

func (r *runner) start(ctx context.Context, fn func(context.Context) error) {
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		r.err = fn(ctx)
	}()
}

func (r *runner) finished() <-chan struct{} { return r.done }

func (r *runner) stop() error {
	r.once.Do(r.cancel)
	<-r.done
	return r.err
}

// kstreamPipeline is the topology Source → Map → Filter → To on kafkaio.
type kstreamPipeline struct {
	runner
	app   *kafkaio.App
	name  string
	parts int
}

// passthroughTopology is the topology both scenarios run: an identity Map
// and a Filter dropping the keys ending in dropSuffix.
func passthroughTopology(in, out string) (*kstream.Topology, error) {
	b := kstream.NewBuilder()
	src := kstream.Source(b, in, serde.Bytes, serde.Bytes)
	mapped := kstream.Map(src, func(k, v []byte) ([]byte, []byte) { return k, v })
	mapped.Filter(func(k, _ []byte) bool { return keep(k) }).To(out, serde.Bytes, serde.Bytes)
	return b.Build()
}

func startKstream(ctx context.Context, brokers []string, group, in, out string, p params, logw io.Writer) (*kstreamPipeline, error) {
	topo, err := passthroughTopology(in, out)
	if err != nil {
		return nil, err
	}
	return startApp(ctx, topo, brokers, group, p, logw)
}

// startApp runs topo on kafkaio with the settings of p.
func startApp(ctx context.Context, topo *kstream.Topology, brokers []string, group string, p params, logw io.Writer) (*kstreamPipeline, error) {
	opts := []kafkaio.Opt{
		kafkaio.AppID(group),
		kafkaio.Brokers(brokers...),
		kafkaio.MaxBatch(p.batch),
		kafkaio.Logger(slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))),
	}
	if p.eos {
		opts = append(opts, kafkaio.ExactlyOnce())
	}
	if p.linger >= 0 {
		opts = append(opts, kafkaio.ClientOpts(kgo.ProducerLinger(p.linger)))
	}
	if p.commit > 0 {
		opts = append(opts, kafkaio.CommitInterval(p.commit))
	}
	if p.stateDir != "" {
		opts = append(opts, kafkaio.StateDir(p.stateDir))
	}
	app, err := kafkaio.NewApp(topo, opts...)
	if err != nil {
		return nil, err
	}
	k := &kstreamPipeline{app: app, name: group, parts: int(p.partitions)}
	k.start(ctx, app.Run)
	return k, nil
}

func (k *kstreamPipeline) processed() int64 { return k.app.Stats().Processed }
func (k *kstreamPipeline) ready() bool      { return k.app.Stats().Tasks == k.parts }
func (k *kstreamPipeline) group() string    { return k.name }
func (k *kstreamPipeline) stop() error {
	err := k.runner.stop()
	k.app.Close()
	return err
}

// handPipeline is the same work written directly on franz-go: a group
// consumer polling batches, filtering, and producing to the output topic with
// Java's key partitioning, committing as kstream does (at-least-once: flush,
// then commit the offsets; exactly-once: a GroupTransactSession transaction
// per commit interval).
type handPipeline struct {
	runner
	cl       *kgo.Client
	sess     *kgo.GroupTransactSession
	name     string
	out      string
	p        params
	n        atomic.Int64
	assigned atomic.Int32
	aborts   atomic.Int64
	prodErr  atomic.Pointer[error]
}

func startHand(ctx context.Context, brokers []string, group, in, out string, p params) (*handPipeline, error) {
	h := &handPipeline{name: group, out: out, p: p}
	count := func(m map[string][]int32, sign int32) {
		for _, ps := range m {
			h.assigned.Add(sign * int32(len(ps)))
		}
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(in),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { count(m, 1) }),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			if len(m) == 0 {
				return
			}
			if !p.eos { // at-least-once: what was produced is committed before giving partitions up
				if err := cl.Flush(ctx); err == nil {
					_ = cl.CommitUncommittedOffsets(ctx)
				}
			}
			count(m, -1)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { count(m, -1) }),
	}
	if p.linger >= 0 {
		opts = append(opts, kgo.ProducerLinger(p.linger))
	}
	var err error
	if p.eos {
		opts = append(opts,
			kgo.TransactionalID(group+"-txn"),
			kgo.TransactionTimeout(10*time.Second),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.RequireStableFetchOffsets(),
		)
		if h.sess, err = kgo.NewGroupTransactSession(opts...); err != nil {
			return nil, fmt.Errorf("bench: hand loop: %w", err)
		}
		h.cl = h.sess.Client()
	} else if h.cl, err = kgo.NewClient(opts...); err != nil {
		return nil, fmt.Errorf("bench: hand loop: %w", err)
	}
	h.start(ctx, h.loop)
	return h, nil
}

func (h *handPipeline) processed() int64 { return h.n.Load() }
func (h *handPipeline) ready() bool      { return h.assigned.Load() == h.p.partitions }
func (h *handPipeline) group() string    { return h.name }

func (h *handPipeline) promise(_ *kgo.Record, err error) {
	if err != nil {
		h.prodErr.CompareAndSwap(nil, &err)
	}
}

func (h *handPipeline) loop(ctx context.Context) (err error) {
	defer func() { err = errors.Join(err, h.finish(err == nil)) }()
	if h.sess != nil {
		if err := h.sess.Begin(); err != nil {
			return fmt.Errorf("bench: hand loop: begin: %w", err)
		}
	}
	interval := h.p.commitInterval()
	last := time.Now()
	for ctx.Err() == nil {
		wait := max(min(interval-time.Since(last), 100*time.Millisecond), time.Millisecond)
		pctx, cancel := context.WithTimeout(ctx, wait)
		var fs kgo.Fetches
		if h.sess != nil {
			fs = h.sess.PollRecords(pctx, h.p.batch)
		} else {
			fs = h.cl.PollRecords(pctx, h.p.batch)
		}
		cancel()
		if fs.IsClientClosed() {
			return errors.New("bench: hand loop: client closed")
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("bench: hand loop: fetching %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		if n := fs.NumRecords(); n > 0 {
			// One allocation per poll for the output records; keys and
			// values are the fetched ones, not copied.
			out := make([]kgo.Record, 0, n)
			fs.EachRecord(func(r *kgo.Record) {
				if !keep(r.Key) {
					return
				}
				out = append(out, kgo.Record{Topic: h.out, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Headers: r.Headers})
				o := &out[len(out)-1]
				if h.sess != nil {
					h.sess.Produce(context.Background(), o, h.promise)
				} else {
					h.cl.Produce(context.Background(), o, h.promise)
				}
			})
			h.n.Add(int64(n))
		}
		if p := h.prodErr.Load(); p != nil {
			return fmt.Errorf("bench: hand loop: producing: %w", *p)
		}
		if time.Since(last) >= interval {
			if err := h.commit(ctx, true); err != nil {
				return err
			}
			last = time.Now()
		}
		if h.sess != nil {
			h.sess.AllowRebalance()
		} else {
			h.cl.AllowRebalance()
		}
	}
	return nil
}

// commit flushes and commits the offsets (at-least-once) or ends the
// transaction and, if again, begins the next one.
func (h *handPipeline) commit(ctx context.Context, again bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if h.sess == nil {
		if err := h.cl.Flush(ctx); err != nil {
			return fmt.Errorf("bench: hand loop: flush: %w", err)
		}
		if p := h.prodErr.Load(); p != nil {
			return fmt.Errorf("bench: hand loop: producing: %w", *p)
		}
		if err := h.cl.CommitUncommittedOffsets(ctx); err != nil {
			return fmt.Errorf("bench: hand loop: commit: %w", err)
		}
		return nil
	}
	committed, err := h.sess.End(ctx, kgo.TryCommit)
	if err != nil {
		return fmt.Errorf("bench: hand loop: end transaction: %w", err)
	}
	if !committed {
		h.aborts.Add(1) // the consumer rewound to the last commit; nothing else to undo
	}
	if again {
		if err := h.sess.Begin(); err != nil {
			return fmt.Errorf("bench: hand loop: begin: %w", err)
		}
	}
	return nil
}

// finish commits (if ok) and closes the client.
func (h *handPipeline) finish(ok bool) error {
	var err error
	if ok {
		err = h.commit(context.Background(), false)
	} else if h.sess != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, _ = h.sess.End(ctx, kgo.TryAbort)
		cancel()
	}
	if h.sess != nil {
		h.sess.CloseAllowingRebalance()
	} else {
		h.cl.CloseAllowingRebalance()
	}
	return err
}

// stoppedEarly is the error of a pipeline that stopped by itself.
func stoppedEarly(pl pipeline) error {
	err := pl.stop()
	if err == nil {
		err = errors.New("no error")
	}
	return fmt.Errorf("bench: %s stopped early: %w", pl.group(), err)
}
