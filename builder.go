package kstream

import (
	"github.com/kstreamgo/kstream/internal/graph"
)

// Builder collects the operators of a topology. Operators append nodes to it
// lazily; nothing runs until a runtime executes the built [Topology]. Errors
// found while building stick to the Builder and are all returned by Build, so
// chains stay fluent.
type Builder struct {
	g     graph.Graph
	built bool
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder { return &Builder{} }

// Build validates the graph, names its internal topics, and splits it into
// sub-topologies. It returns every problem found, joined.
func (b *Builder) Build() (*Topology, error) {
	if b.built {
		b.g.Errorf("kstream: Build called twice on one Builder")
	}
	b.built = true
	t, err := b.g.Finish()
	if err != nil {
		return nil, err
	}
	return &Topology{t: t}, nil
}

// Topology is a built, validated topology, ready for a runtime (package
// kafkaio) or the test driver (package kstest).
type Topology struct {
	t *graph.Topology
}

// Describe returns a stable text description: sub-topologies, nodes with
// their successors and predecessors, topics and stores. Internal topics show
// as "<appID>-name".
func (t *Topology) Describe() string { return t.t.Describe() }

// Mermaid returns the topology as a Mermaid flowchart.
func (t *Topology) Mermaid() string { return t.t.Mermaid() }

// InternalTopics returns the names of the internal topics (repartition topics
// and changelogs) for the application ID appID, sorted.
func (t *Topology) InternalTopics(appID string) []string {
	refs := t.t.InternalTopics()
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.Resolve(appID)
	}
	return out
}

// Graph returns the untyped graph for kstream's runtime packages. Its type is
// internal: applications have no use for it.
func (t *Topology) Graph() *graph.Topology { return t.t }
