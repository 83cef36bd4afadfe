package kafkaio

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/state"
)

// resetConfig holds the options that only Reset reads. NewApp ignores it
// (a non-nil config.reset in NewApp is a misuse).
type resetConfig struct {
	toTime time.Time // zero: the earliest offsets
	dryRun bool
	errs   []error // invalid reset options
}

// resetOpts returns c's reset options, created on first use.
func (c *config) resetOpts() *resetConfig {
	if c.reset == nil {
		c.reset = &resetConfig{}
	}
	return c.reset
}

// ResetToTime makes Reset move the group's offsets of the input topics to
// the first record whose timestamp is at or after t, instead of the earliest
// offsets (Kafka's reset tool's --to-datetime; for its --by-duration, pass
// time.Now().Add(-d)). A partition with no record at or after t goes to its
// end: nothing of it is reprocessed. An option of Reset only: NewApp ignores
// it.
func ResetToTime(t time.Time) Opt {
	return func(c *config) {
		r := c.resetOpts()
		if t.IsZero() {
			r.errs = append(r.errs, errors.New("kafkaio: ResetToTime: the time is zero"))
		}
		r.toTime = t
	}
}

// ResetDryRun makes Reset change nothing: it checks that the group has no
// active member, computes the offsets, and returns the report of what it
// would do (Kafka's reset tool's --dry-run). An option of Reset only:
// NewApp ignores it.
func ResetDryRun() Opt { return func(c *config) { c.resetOpts().dryRun = true } }

// ResetReport says what Reset did or, in a dry run, would do.
type ResetReport struct {
	// Group is the application's consumer group (its app ID).
	Group string
	// DryRun is set when nothing was changed (ResetDryRun).
	DryRun bool
	// Offsets lists the group's offsets of every partition of the input
	// topics, sorted by topic and partition.
	Offsets []ResetOffset
	// DeletedTopics lists the internal topics deleted, sorted: the
	// repartition topics and changelogs of the topology that existed.
	DeletedTopics []string
	// StateDir is the state directory Reset cleaned (the StateDir option),
	// empty without one.
	StateDir string
	// StateRemoved is set when the app's directory in StateDir
	// ("<StateDir>/<appID>": its stores and checkpoints) was removed (in a
	// dry run: would be); false when there is none.
	StateRemoved bool
}

// ResetOffset is the group's offset of one input topic partition, before
// and after the reset.
type ResetOffset struct {
	Topic     string
	Partition int32
	// Old is the offset the group had committed, -1 if none; New the one
	// Reset commits.
	Old, New int64
	// Intermediate is set for a topic the topology writes as well as reads:
	// it goes to its end (as Kafka's tool did with --intermediate-topics),
	// since reprocessing writes its records again.
	Intermediate bool
}

// String renders the report, one line per change.
func (r *ResetReport) String() string {
	var b strings.Builder
	verb := func(done, would string) string {
		if r.DryRun {
			return would
		}
		return done
	}
	fmt.Fprintf(&b, "reset of group %s", r.Group)
	if r.DryRun {
		b.WriteString(" (dry run: nothing changed)")
	}
	b.WriteString("\n")
	for _, o := range r.Offsets {
		note := ""
		if o.Intermediate {
			note = " (intermediate topic: to its end)"
		}
		fmt.Fprintf(&b, "offset %s/%d: %s -> %d%s\n", o.Topic, o.Partition, offsetString(o.Old), o.New, note)
	}
	for _, t := range r.DeletedTopics {
		fmt.Fprintf(&b, "%s topic %s\n", verb("deleted", "would delete"), t)
	}
	if r.StateRemoved {
		fmt.Fprintf(&b, "%s local state in %s\n", verb("removed", "would remove"), r.StateDir)
	}
	return b.String()
}

func offsetString(o int64) string {
	if o < 0 {
		return "none"
	}
	return strconv.FormatInt(o, 10)
}

// Reset resets the application of topo so that its next run reprocesses its
// input from the start with empty state, as Kafka's
// kafka-streams-application-reset tool followed by KafkaStreams.cleanUp()
// do. No instance of the application may run: Reset refuses, changing
// nothing, when the group has active members. It
//
//   - commits the group's offsets of every partition of the input topics
//     (the topics the topology's sub-topologies read, source tables
//     included) at their earliest offsets, or with ResetToTime at the first
//     record at or after a time. A topic the topology also writes goes to
//     its end instead (ResetOffset.Intermediate);
//   - deletes the topology's internal topics (its repartition topics and
//     changelogs, "<appID>-..."), which deletes the group's offsets of them
//     too; the next Run creates them again, empty;
//   - with StateDir, removes the application's local state there, its
//     directory "<StateDir>/<appID>" (its stores and task checkpoints), and
//     nothing else, so that a StateDir shared with other applications
//     keeps theirs.
//
// It leaves alone the output topics, the topics of global tables (the group
// does not consume them: every Run reads them from the start), the
// dead-letter topic (what failed is kept for inspection, even under its
// default name "<appID>-dlq"; a reprocessing dead-letters the same records
// again), internal topics that the topology does not plan (from an older
// version of the application, or of another application whose ID starts
// with this one's: delete those yourself), and the StateDir's instance-id
// file (shared by the directory's applications).
//
// Reset takes the options of NewApp, so that one option list serves both:
// AppID, Brokers and ClientOpts say where; StateDir what to clean; Logger
// receives a line per step; the other options of NewApp are
// ignored. ResetToTime and ResetDryRun are options of Reset only. Every
// machine that ran an instance with a state directory needs its local state
// removed: call Reset there with its StateDir (while no instance runs,
// running it again changes nothing more on the brokers).
//
// The report says what was done; with an error, what was done before it
// (nil when the options are invalid).
func Reset(ctx context.Context, topo *kstream.Topology, opts ...Opt) (*ResetReport, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	rc := cfg.reset
	if rc == nil {
		rc = &resetConfig{}
	}
	switch {
	case topo == nil:
		return nil, errors.New("kafkaio: Reset: the topology is nil")
	case checkAppID(cfg.appID) != nil:
		return nil, fmt.Errorf("kafkaio: Reset: %w", checkAppID(cfg.appID))
	case len(cfg.brokers) == 0:
		return nil, errors.New("kafkaio: Reset: Brokers is required")
	case len(rc.errs) > 0:
		return nil, errors.Join(rc.errs...)
	}
	log := cmp.Or(cfg.logger, slog.Default()).With("app", cfg.appID)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.brokers...)}, cfg.clientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafkaio: Reset: %w", err)
	}
	defer cl.Close()
	r := &resetter{cfg: &cfg, rc: rc, g: topo.Graph(), cl: cl, adm: kadm.NewClient(cl), log: log,
		report: &ResetReport{Group: cfg.appID, DryRun: rc.dryRun, StateDir: cfg.stateDir}}
	return r.report, r.run(ctx)
}

// resetter runs one Reset.
type resetter struct {
	cfg    *config
	rc     *resetConfig
	g      *graph.Topology
	cl     *kgo.Client
	adm    *kadm.Client
	log    *slog.Logger
	report *ResetReport

	inputs       []string        // the input topics, sorted
	intermediate map[string]bool // inputs the topology writes too
	internal     []string        // the planned internal topics, sorted
}

func (r *resetter) run(ctx context.Context) error {
	group := r.cfg.appID
	if err := r.checkIdle(ctx); err != nil {
		return err
	}
	r.topics()
	details, err := r.adm.ListTopics(ctx, append(slices.Clone(r.inputs), r.internal...)...)
	if err != nil {
		return fmt.Errorf("kafkaio: Reset of group %s: listing topics: %w", group, err)
	}
	var missing, existing []string
	for _, t := range r.inputs {
		if d, ok := details[t]; !ok || d.Err != nil || len(d.Partitions) == 0 {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("kafkaio: Reset of group %s: input topics %s do not exist", group, strings.Join(missing, ", "))
	}
	for _, t := range r.internal {
		if d, ok := details[t]; ok && d.Err == nil {
			existing = append(existing, t)
		}
	}
	commit, err := r.offsets(ctx)
	if err != nil {
		return err
	}

	// Local state: the app's own directory in StateDir. Its database is
	// opened first, and held, so that a directory in use (an instance
	// running) fails before anything changes.
	var db *state.DB
	var appDir string
	if dir := r.cfg.stateDir; dir != "" {
		appDir = filepath.Join(dir, r.cfg.appID)
		switch _, err := os.Stat(appDir); {
		case errors.Is(err, os.ErrNotExist):
			appDir = ""
		case err != nil:
			return fmt.Errorf("kafkaio: Reset of group %s: state directory %s: %w", group, dir, err)
		case r.rc.dryRun:
			r.report.StateRemoved = true
		default:
			if db, err = state.Open(stateDBPath(dir, r.cfg.appID), state.WithoutCache(), state.MemoryBudget(state.MinMemoryBudget)); err != nil {
				return fmt.Errorf("kafkaio: Reset of group %s: opening the state directory %s (is an instance running?): %w", group, appDir, err)
			}
			defer func() { _ = db.Close() }()
		}
	}
	if r.rc.dryRun {
		r.report.DeletedTopics = existing
		r.log.Info("kstream: reset dry run: nothing changed", "partitions", len(r.report.Offsets), "to_time", r.rc.toTime,
			"would_delete", existing, "would_remove_state", r.report.StateRemoved)
		return nil
	}

	if err := r.commit(ctx, commit); err != nil {
		return err
	}
	if err := r.deleteTopics(ctx, existing); err != nil {
		return err
	}
	if db != nil {
		if err := db.Close(); err != nil {
			return fmt.Errorf("kafkaio: Reset of group %s: closing the state directory %s: %w", group, appDir, err)
		}
		if err := os.RemoveAll(appDir); err != nil {
			return fmt.Errorf("kafkaio: Reset of group %s: removing the state directory %s: %w", group, appDir, err)
		}
		r.report.StateRemoved = true
		r.log.Info("kstream: reset: removed local state", "dir", appDir)
	}
	return nil
}

// checkIdle fails when the group has members: an instance is running.
func (r *resetter) checkIdle(ctx context.Context) error {
	group := r.cfg.appID
	described, err := r.adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("kafkaio: Reset: describing group %s: %w", group, err)
	}
	d, ok := described[group]
	if !ok {
		return nil
	}
	if d.Err != nil && !errors.Is(d.Err, kerr.GroupIDNotFound) {
		return fmt.Errorf("kafkaio: Reset: describing group %s: %w", group, d.Err)
	}
	if len(d.Members) > 0 || (d.State != "" && d.State != "Empty" && d.State != "Dead") {
		return fmt.Errorf("kafkaio: Reset: group %s has %d active members (state %s): stop every instance of the application first",
			group, len(d.Members), d.State)
	}
	return nil
}

// topics finds the input topics (sources of the sub-topologies the group
// runs that are not internal), those of them the topology writes too, and
// the internal topics.
func (r *resetter) topics() {
	app := r.cfg.appID
	global := map[int]bool{}
	for _, st := range r.g.SubTopologies {
		global[st.ID] = st.Global
	}
	written := map[string]bool{}
	r.intermediate = map[string]bool{}
	for _, n := range r.g.Nodes {
		if n.Kind == graph.KindSink && !n.Topic.Internal && n.Topic.Name != "" {
			written[n.Topic.Name] = true
		}
	}
	for _, n := range r.g.Nodes {
		if n.Kind != graph.KindSource || n.Topic.Internal || global[n.SubTopology] {
			continue
		}
		if !slices.Contains(r.inputs, n.Topic.Name) {
			r.inputs = append(r.inputs, n.Topic.Name)
		}
		if written[n.Topic.Name] {
			r.intermediate[n.Topic.Name] = true
		}
	}
	slices.Sort(r.inputs)
	for _, ref := range r.g.InternalTopics() {
		r.internal = append(r.internal, ref.Resolve(app))
	}
	slices.Sort(r.internal)
}

// offsets fills the report's offsets and returns those to commit.
func (r *resetter) offsets(ctx context.Context) (kadm.Offsets, error) {
	group := r.cfg.appID
	committed, err := r.adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		committed, err = nil, nil // never ran: no offsets
	}
	if err != nil {
		return nil, fmt.Errorf("kafkaio: Reset: fetching the committed offsets of group %s: %w", group, err)
	}
	ends, err := r.adm.ListEndOffsets(ctx, r.inputs...)
	if err != nil {
		return nil, fmt.Errorf("kafkaio: Reset of group %s: listing end offsets: %w", group, err)
	}
	var target kadm.ListedOffsets
	if t := r.rc.toTime; !t.IsZero() {
		target, err = r.adm.ListOffsetsAfterMilli(ctx, t.UnixMilli(), r.inputs...)
	} else {
		target, err = r.adm.ListStartOffsets(ctx, r.inputs...)
	}
	if err != nil {
		return nil, fmt.Errorf("kafkaio: Reset of group %s: listing offsets: %w", group, err)
	}
	commit := kadm.Offsets{}
	var errs []error
	ends.Each(func(end kadm.ListedOffset) {
		t, p := end.Topic, end.Partition
		if !slices.Contains(r.inputs, t) || p < 0 {
			return
		}
		if end.Err != nil {
			errs = append(errs, fmt.Errorf("kafkaio: Reset of group %s: end offset of %s/%d: %w", group, t, p, end.Err))
			return
		}
		to := end.Offset
		if !r.intermediate[t] {
			o, ok := target.Lookup(t, p)
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("kafkaio: Reset of group %s: no offset listed for %s/%d", group, t, p))
				return
			case o.Err != nil:
				errs = append(errs, fmt.Errorf("kafkaio: Reset of group %s: offset of %s/%d: %w", group, t, p, o.Err))
				return
			case o.Offset >= 0:
				to = o.Offset // else no record at or after the time: the end
			}
		}
		old := int64(-1)
		if c, ok := committed.Lookup(t, p); ok && c.Err == nil {
			old = c.At
		}
		r.report.Offsets = append(r.report.Offsets, ResetOffset{Topic: t, Partition: p, Old: old, New: to, Intermediate: r.intermediate[t]})
		if commit[t] == nil {
			commit[t] = map[int32]kadm.Offset{}
		}
		commit[t][p] = kadm.Offset{Topic: t, Partition: p, At: to, LeaderEpoch: -1}
	})
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.SortFunc(r.report.Offsets, func(x, y ResetOffset) int {
		return cmp.Or(cmp.Compare(x.Topic, y.Topic), cmp.Compare(x.Partition, y.Partition))
	})
	return commit, nil
}

// commit commits the new input offsets. A broker refuses a commit without a
// member to a group with members: an instance that started since
// checkIdle fails it here.
func (r *resetter) commit(ctx context.Context, offsets kadm.Offsets) error {
	group := r.cfg.appID
	resp, err := r.adm.CommitOffsets(ctx, group, offsets)
	if err != nil {
		return fmt.Errorf("kafkaio: Reset: committing the offsets of group %s: %w", group, err)
	}
	var errs []error
	resp.EachError(func(o kadm.OffsetResponse) {
		hint := ""
		if errors.Is(o.Err, kerr.UnknownMemberID) || errors.Is(o.Err, kerr.IllegalGeneration) || errors.Is(o.Err, kerr.RebalanceInProgress) {
			hint = " (has an instance started?)"
		}
		errs = append(errs, fmt.Errorf("kafkaio: Reset: committing the offset of %s/%d for group %s%s: %w", o.Topic, o.Partition, group, hint, o.Err))
	})
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	r.log.Info("kstream: reset: committed input offsets", "partitions", len(r.report.Offsets), "to_time", r.rc.toTime)
	return nil
}

// deleteTopics deletes the existing internal topics, waits until the
// brokers no longer list them (so that the next Run creates them again),
// and deletes any offsets of them that the group still has.
func (r *resetter) deleteTopics(ctx context.Context, topics []string) error {
	group := r.cfg.appID
	if len(topics) == 0 {
		return nil
	}
	resp, err := r.adm.DeleteTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("kafkaio: Reset of group %s: deleting topics %s: %w", group, strings.Join(topics, ", "), err)
	}
	var errs []error
	for _, t := range topics {
		d, ok := resp[t]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("kafkaio: Reset of group %s: deleting topic %s: no answer", group, t))
		case d.Err != nil && !errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			errs = append(errs, fmt.Errorf("kafkaio: Reset of group %s: deleting topic %s: %w", group, t, d.Err))
		default:
			r.report.DeletedTopics = append(r.report.DeletedTopics, t)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	r.log.Info("kstream: reset: deleted internal topics", "topics", topics)

	// Metadata requests of their own: kadm's ListTopics may answer from
	// the client's metadata cache.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req := metadataRequest(topics...)
	req.AllowAutoTopicCreation = false // never bring a deleted topic back
	for {
		resp, err := req.RequestWith(wctx, r.cl)
		left := 0
		if err == nil {
			for _, t := range resp.Topics {
				if t.ErrorCode != kerr.UnknownTopicOrPartition.Code {
					left++
				}
			}
		}
		if err == nil && left == 0 {
			break
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("kafkaio: Reset of group %s: waiting for the deleted topics %s to disappear: %w", group, strings.Join(topics, ", "), wctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}

	// Brokers drop a deleted topic's committed offsets; make sure of it.
	committed, err := r.adm.FetchOffsets(ctx, group)
	if err != nil {
		return fmt.Errorf("kafkaio: Reset: fetching the committed offsets of group %s: %w", group, err)
	}
	stale := kadm.TopicsSet{}
	committed.Each(func(o kadm.OffsetResponse) {
		if slices.Contains(topics, o.Topic) {
			stale.Add(o.Topic, o.Partition)
		}
	})
	if len(stale) == 0 {
		return nil
	}
	deleted, err := r.adm.DeleteOffsets(ctx, group, stale)
	if err != nil {
		return fmt.Errorf("kafkaio: Reset: deleting the offsets of group %s on its deleted internal topics: %w", group, err)
	}
	for t, ps := range deleted {
		for p, err := range ps {
			if err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
				errs = append(errs, fmt.Errorf("kafkaio: Reset: deleting the offset of %s/%d of group %s: %w", t, p, group, err))
			}
		}
	}
	return errors.Join(errs...)
}
