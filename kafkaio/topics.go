package kafkaio

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kstreamgo/kstream/internal/graph"
)

// topicPlan is what the app learned and created at start: the partition
// count of every topic it reads or writes, and of every sub-topology.
type topicPlan struct {
	partitions map[string]int32
	subCount   []int32
	readers    map[string]int // source topic -> sub-topology
	sources    []string       // every source topic the group reads, sorted
	global     []string       // the topics of global tables
	// purged are the internal topics the group reads (repartition
	// topics), whose records are deleted once committed (App.purge).
	purged map[string]bool
	// latest are the source topics read from their end where the group
	// has no offset (kstream.FromLatest).
	latest map[string]bool
}

// planTopics checks the user topics, derives the partition counts of the
// internal ones, and creates those that are missing (changelogs compacted).
func planTopics(ctx context.Context, cl *kgo.Client, g *graph.Topology, cfg *config) (*topicPlan, error) {
	adm := kadm.NewClient(cl)
	app := cfg.appID
	p := &topicPlan{partitions: map[string]int32{}, subCount: make([]int32, len(g.SubTopologies)), readers: map[string]int{}}
	global := map[int]bool{}
	for _, st := range g.SubTopologies {
		global[st.ID] = st.Global
	}
	writer := map[string]int{} // internal repartition topic -> sub-topology writing it
	var user, internal []string
	addUser := func(t string) {
		if !slices.Contains(user, t) {
			user = append(user, t)
		}
	}
	for _, n := range g.Nodes {
		name := n.Topic.Resolve(app)
		switch n.Kind {
		case graph.KindSource:
			if global[n.SubTopology] {
				p.global = append(p.global, name)
				addUser(name)
				continue
			}
			p.readers[name] = n.SubTopology
			p.sources = append(p.sources, name)
			if n.FromLatest {
				if p.latest == nil {
					p.latest = map[string]bool{}
				}
				p.latest[name] = true
			}
			if !n.Topic.Internal {
				addUser(name)
			} else {
				if p.purged == nil {
					p.purged = map[string]bool{}
				}
				p.purged[name] = true
			}
		case graph.KindSink:
			if n.Topic.Internal {
				writer[name] = n.SubTopology
			} else {
				addUser(name)
			}
		}
	}
	slices.Sort(p.sources)
	dlq := cfg.dlqTopic
	usesDLQ := cfg.onDeserialize == PolicyDeadLetter || cfg.onProcess == PolicyDeadLetter || cfg.onProduce == PolicyDeadLetter
	for _, ref := range g.InternalTopics() {
		internal = append(internal, ref.Resolve(app))
	}
	all := append(slices.Clone(user), internal...)
	if usesDLQ {
		all = append(all, dlq)
	}
	details, err := adm.ListTopics(ctx, all...)
	if err != nil {
		return nil, fmt.Errorf("kafkaio: listing topics: %w", err)
	}
	var missing []string
	for _, t := range user {
		d, ok := details[t]
		if !ok || d.Err != nil || len(d.Partitions) == 0 {
			missing = append(missing, t)
			continue
		}
		p.partitions[t] = int32(len(d.Partitions))
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("kafkaio: topics %s do not exist: create them before starting the application", strings.Join(missing, ", "))
	}

	// Partition counts: a sub-topology has as many tasks as its source
	// topics have partitions (all equal: co-partitioning), known as soon as
	// one of them is known. An internal topic takes the count of the
	// sub-topology that reads it, so that it is co-partitioned with the
	// reader's other inputs (the foreign-key join's topics); only when the
	// reader has no other way to know, it takes the count of its writer (or
	// InternalTopicPartitions).
	for {
		changed := false
		for _, st := range g.SubTopologies {
			if p.subCount[st.ID] != 0 {
				continue
			}
			var n int32
			for _, src := range st.Sources {
				name := src.Topic.Resolve(app)
				c, known := p.partitions[name]
				if !known {
					continue
				}
				if n != 0 && c != n {
					return nil, fmt.Errorf("kafkaio: sub-topology %d reads topics with different partition counts (%s has %d, expected %d): co-partitioned topics need equal counts", st.ID, name, c, n)
				}
				n = c
			}
			if n > 0 {
				p.subCount[st.ID] = n
				changed = true
			}
		}
		for t := range writer {
			if _, known := p.partitions[t]; known {
				continue
			}
			if r, ok := p.readers[t]; ok && p.subCount[r] != 0 {
				p.partitions[t] = p.subCount[r]
				changed = true
			}
		}
		if changed {
			continue
		}
		// No progress: give one topic its writer's count, then derive again.
		for _, t := range slices.Sorted(maps.Keys(writer)) {
			w := writer[t]
			if _, known := p.partitions[t]; known || p.subCount[w] == 0 {
				continue
			}
			n := p.subCount[w]
			if cfg.partitions > 0 {
				n = cfg.partitions
			}
			p.partitions[t] = n
			changed = true
			break
		}
		if !changed {
			break
		}
	}
	// Every source topic of a sub-topology must now agree.
	for _, st := range g.SubTopologies {
		for _, src := range st.Sources {
			name := src.Topic.Resolve(app)
			if c, known := p.partitions[name]; known && p.subCount[st.ID] != 0 && c != p.subCount[st.ID] {
				return nil, fmt.Errorf("kafkaio: sub-topology %d reads topics with different partition counts (%s has %d, expected %d): co-partitioned topics need equal counts", st.ID, name, c, p.subCount[st.ID])
			}
		}
	}
	for _, st := range g.SubTopologies {
		for _, s := range st.Stores {
			if s.FromSource {
				delete(p.purged, s.Changelog.Resolve(app)) // a store restores from it
			}
		}
	}
	for _, st := range g.SubTopologies {
		if p.subCount[st.ID] == 0 {
			return nil, fmt.Errorf("kafkaio: cannot derive the partition count of sub-topology %d", st.ID)
		}
		for _, s := range st.Stores {
			if !s.FromSource {
				p.partitions[s.Changelog.Resolve(app)] = p.subCount[st.ID]
			}
		}
	}
	if usesDLQ {
		if d, ok := details[dlq]; ok && d.Err == nil && len(d.Partitions) > 0 {
			p.partitions[dlq] = int32(len(d.Partitions))
		} else {
			p.partitions[dlq] = 1
			internal = append(internal, dlq)
		}
	}

	// Create what is missing; check what exists.
	var errs []error
	var created []string
	for _, t := range internal {
		want := p.partitions[t]
		if d, ok := details[t]; ok && d.Err == nil && len(d.Partitions) > 0 {
			if got := int32(len(d.Partitions)); got != want {
				errs = append(errs, fmt.Errorf("kafkaio: internal topic %s has %d partitions, the topology needs %d", t, got, want))
			}
			continue
		}
		configs := map[string]*string{}
		switch {
		case strings.HasSuffix(t, "-changelog"):
			configs["cleanup.policy"] = kadm.StringPtr("compact")
		case p.purged[t]:
			// As Kafka Streams' repartition topics (KIP-284): records
			// stay until processed and committed, whatever their age
			// (after downtime, or reprocessing old records), and the
			// app deletes them then; small segments let the broker free
			// the space soon after.
			configs["cleanup.policy"] = kadm.StringPtr("delete")
			configs["retention.ms"] = kadm.StringPtr("-1")
			configs["segment.bytes"] = kadm.StringPtr("52428800")
		}
		for k, v := range cfg.topicConfigs { // never cleanup.policy (NewApp)
			configs[k] = kadm.StringPtr(v)
		}
		resp, err := adm.CreateTopics(ctx, want, cmp.Or(cfg.replication, -1), configs, t)
		if err != nil {
			return nil, fmt.Errorf("kafkaio: creating topic %s: %w", t, err)
		}
		for _, r := range resp {
			if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
				errs = append(errs, fmt.Errorf("kafkaio: creating topic %s: %w (%s)", r.Topic, r.Err, r.ErrMessage))
			}
		}
		created = append(created, t)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := waitTopics(ctx, cl, created, p.partitions); err != nil {
		return nil, err
	}
	return p, nil
}

// waitTopics waits until the brokers' metadata lists every topic of topics
// with all its partitions led. A broker answers CreateTopics before its
// metadata has the new topic: a consumer that looked the topic up then would
// wait for its next metadata refresh (franz-go's MetadataMinAge, 5 s) before
// reading it (which kadm's cached metadata would do here too: the requests
// go to the brokers directly).
func waitTopics(ctx context.Context, cl *kgo.Client, topics []string, partitions map[string]int32) error {
	if len(topics) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req := metadataRequest(topics...)
	for {
		if resp, err := req.RequestWith(ctx, cl); err == nil && topicsLed(resp, partitions) == len(topics) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafkaio: waiting for the new topics %s to have leaders: %w", strings.Join(topics, ", "), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// metadataRequest asks for the metadata of topics.
func metadataRequest(topics ...string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	return req
}

// topicsLed counts the topics of resp that have the number of partitions of
// partitions, all with a leader.
func topicsLed(resp *kmsg.MetadataResponse, partitions map[string]int32) int {
	n := 0
	for _, t := range resp.Topics {
		if t.Topic == nil || t.ErrorCode != 0 || int32(len(t.Partitions)) != partitions[*t.Topic] {
			continue
		}
		led := true
		for _, p := range t.Partitions {
			led = led && p.ErrorCode == 0 && p.Leader >= 0
		}
		if led {
			n++
		}
	}
	return n
}
