package graph

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Kind says what role a node plays at a task's boundary.
type Kind uint8

const (
	// KindSource reads one topic: its executor is a func(*RawRecord).
	KindSource Kind = iota
	// KindProcessor transforms records inside a task: its executor is typed.
	KindProcessor
	// KindSink writes to one topic.
	KindSink
)

// TopicRef names a topic: a user topic as given, or an internal topic whose full
// name is "<appID>-<Name>" once the runtime knows the application ID.
type TopicRef struct {
	Name     string
	Internal bool
}

// Resolve returns the full topic name for the application appID.
func (t TopicRef) Resolve(appID string) string {
	if t.Internal {
		return appID + "-" + t.Name
	}
	return t.Name
}

// String renders the topic for descriptions: internal topics show the app ID as a placeholder.
func (t TopicRef) String() string {
	if t.Internal {
		return "<appID>-" + t.Name
	}
	return t.Name
}

// MakeFunc creates a node's executor for one task. children holds the executors
// of the node's children in the order of Node.Children; a processor returns its
// typed input function (for example func(K, V, *Meta)) as any, a source returns a
// func(*RawRecord). It runs once per task, never per record. When the task
// counts the records each node receives, a child's executor comes wrapped
// in a CountedExec.
type MakeFunc func(tc *TaskContext, children []any) (any, error)

// CountedExec is a child's executor Exec, given to its parent's MakeFunc by
// a task that counts the records each node receives: the parent calls the
// child through a function that adds one to *N per call.
type CountedExec struct {
	Exec any
	N    *int64
}

// Inlinable is implemented by an executor that its parent may run in the
// parent's own frame (a Filter or a Peek after a Map): Exec returns the
// node's typed input function, which every other caller uses.
type Inlinable interface{ Exec() any }

// ExecOf returns the typed input function of executor e: e itself, or
// e.Exec() when e is Inlinable.
func ExecOf(e any) any {
	if i, ok := e.(Inlinable); ok {
		return i.Exec()
	}
	return e
}

// Node is one operator of the untyped topology graph.
type Node struct {
	ID       int
	Name     string // unique; a user's Named or a generated name
	Op       string // what the node does: "filter", "map", "count", ...
	Kind     Kind
	Parents  []*Node
	Children []*Node
	Topic    TopicRef // source and sink nodes
	Stores   []string // stores the node reads or writes
	Make     MakeFunc

	// Repartition marks a sink/source pair that the builder inserted or that
	// the user asked for with Repartition.
	Repartition bool
	// UserNamed is true when the name came from kstream.Named.
	UserNamed   bool
	SubTopology int
	// FromLatest marks a source that starts at the end of its topic's
	// partitions that the application has no committed offset for
	// (kstream.FromLatest).
	FromLatest bool
	// ExtractsTime marks a source whose executor sets its records'
	// timestamps itself (kstream.TimestampFrom) and tells the task's
	// stream time with TaskContext.ObserveExtracted.
	ExtractsTime bool
}

// StoreSpec describes a state store.
type StoreSpec struct {
	Name string
	// Changelog is the topic that backs the store; for a source table it is
	// the source topic itself.
	Changelog TopicRef
	// Timestamped stores keep an 8-byte big-endian timestamp before each
	// value; their changelog records carry it as the record timestamp.
	Timestamped bool
	// FromSource is true when the changelog is the table's own source topic:
	// writes are not logged again, and restoring reads that topic.
	FromSource bool
	// RestoreCheck, when set (source tables), says whether a record read
	// back from the changelog goes into the store, and with which
	// timestamp, as processing it did: a record that processing failed
	// (it does not decode, or kstream.TimestampFrom gave a negative time)
	// was skipped or dead-lettered, and is skipped again. Tombstones and
	// null keys do not reach it.
	RestoreCheck func(key, value []byte, ts int64) (int64, bool)
	// Global stores hold every partition of their topic, on every instance;
	// any task may read them.
	Global bool
	// KeyValue stores map each key, as the key serde encodes it, to one
	// value: tables, aggregations and the stores of Process nodes.
	// Interactive queries read them (window and join stores have keys of
	// their own layout).
	KeyValue bool
	// Windowed stores are those of windowed and session aggregations: their
	// data keys are the ordered encoding of a Windowed key (see the root
	// package's window_store.go), their values timestamped aggregates.
	Windowed    bool
	SubTopology int
}

// Graph is the topology under construction. Builders append nodes; Finish
// validates it and splits it into sub-topologies.
type Graph struct {
	Nodes  []*Node
	Stores []*StoreSpec
	errs   []error
	seq    int
}

// AddNode appends n, connecting it to its parents, and returns it. A node
// without a name gets a generated one: its op in upper case and its sequence
// number, as Kafka Streams names nodes.
func (g *Graph) AddNode(n *Node, parents ...*Node) *Node {
	n.ID = len(g.Nodes)
	if n.Name == "" {
		n.Name = strings.ToUpper(n.Op) + "-" + pad(g.seq)
	}
	g.seq++
	for _, p := range parents {
		n.Parents = append(n.Parents, p)
		p.Children = append(p.Children, n)
	}
	g.Nodes = append(g.Nodes, n)
	return n
}

func pad(i int) string {
	s := strconv.Itoa(i)
	if len(s) < 10 {
		s = strings.Repeat("0", 10-len(s)) + s
	}
	return s
}

// AddStore registers a store; a second store with the same name is an error.
func (g *Graph) AddStore(s *StoreSpec) {
	for _, o := range g.Stores {
		if o.Name == s.Name {
			g.Errorf("store %q is defined twice", s.Name)
			return
		}
	}
	g.Stores = append(g.Stores, s)
}

// Store returns the store named name, or nil.
func (g *Graph) Store(name string) *StoreSpec {
	for _, s := range g.Stores {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Errorf records a build error; Finish returns all of them.
func (g *Graph) Errorf(format string, args ...any) {
	g.errs = append(g.errs, fmt.Errorf(format, args...))
}

// SubTopology is a connected part of the graph between topics: a task runs
// one sub-topology for one partition.
type SubTopology struct {
	ID int
	// Global marks the sub-topology that maintains global stores: one
	// task reads every partition of its topics.
	Global  bool
	Nodes   []*Node // in ID order, which is a topological order
	Sources []*Node
	Stores  []*StoreSpec
}

// SourceTopics lists the topics the sub-topology reads, in node order.
func (s *SubTopology) SourceTopics() []TopicRef {
	out := make([]TopicRef, 0, len(s.Sources))
	for _, n := range s.Sources {
		out = append(out, n.Topic)
	}
	return out
}

// Topology is a validated graph split into sub-topologies.
type Topology struct {
	Nodes         []*Node
	Stores        []*StoreSpec
	SubTopologies []*SubTopology
}

// Finish validates the graph and splits it into sub-topologies. It returns
// every problem at once.
func (g *Graph) Finish() (*Topology, error) {
	errs := slices.Clone(g.errs)
	names := map[string]*Node{}
	sourceTopics := map[TopicRef]*Node{}
	for _, n := range g.Nodes {
		if o, dup := names[n.Name]; dup {
			errs = append(errs, fmt.Errorf("kstream: name %q is used by two nodes (%s and %s)", n.Name, o.Op, n.Op))
		} else {
			names[n.Name] = n
		}
		if n.Kind == KindSource {
			if o, dup := sourceTopics[n.Topic]; dup {
				errs = append(errs, fmt.Errorf("kstream: topic %s is read by two sources (%s and %s)", n.Topic, o.Name, n.Name))
			} else {
				sourceTopics[n.Topic] = n
			}
		}
		if n.Make == nil {
			errs = append(errs, fmt.Errorf("kstream: node %s has no executor", n.Name))
		}
	}
	for _, s := range g.Stores {
		if o, dup := names[s.Name]; dup && !slices.Contains(o.Stores, s.Name) {
			errs = append(errs, fmt.Errorf("kstream: name %q is used by a store and by node %s", s.Name, o.Name))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	// Union-find over nodes: parent edges and shared stores join nodes.
	parent := make([]int, len(g.Nodes))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	union := func(a, b int) {
		ra, rb := find(a), find(b)
		if ra == rb {
			return
		}
		if ra < rb {
			parent[rb] = ra
		} else {
			parent[ra] = rb
		}
	}
	storeOwner := map[string]int{}
	for _, n := range g.Nodes {
		for _, p := range n.Parents {
			union(n.ID, p.ID)
		}
		for _, s := range n.Stores {
			if o, ok := storeOwner[s]; ok {
				// A global store is read from any sub-topology: it does
				// not tie its readers to its owner.
				if spec := g.Store(s); spec == nil || !spec.Global {
					union(n.ID, o)
				}
			} else {
				storeOwner[s] = n.ID
			}
		}
	}
	roots := map[int]*SubTopology{}
	t := &Topology{Nodes: g.Nodes, Stores: g.Stores}
	for _, n := range g.Nodes {
		r := find(n.ID)
		st, ok := roots[r]
		if !ok {
			st = &SubTopology{ID: len(t.SubTopologies)}
			roots[r] = st
			t.SubTopologies = append(t.SubTopologies, st)
		}
		n.SubTopology = st.ID
		st.Nodes = append(st.Nodes, n)
		if n.Kind == KindSource {
			st.Sources = append(st.Sources, n)
		}
	}
	for _, s := range g.Stores {
		owner, ok := storeOwner[s.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("kstream: store %q is used by no node", s.Name))
			continue
		}
		s.SubTopology = g.Nodes[owner].SubTopology
		st := t.SubTopologies[s.SubTopology]
		st.Stores = append(st.Stores, s)
		if s.Global {
			st.Global = true
		}
	}
	for _, n := range g.Nodes {
		for _, s := range n.Stores {
			if g.Store(s) == nil {
				errs = append(errs, fmt.Errorf("kstream: node %s uses store %q, which is not defined", n.Name, s))
			}
		}
	}
	for _, st := range t.SubTopologies {
		if len(st.Sources) == 0 {
			errs = append(errs, fmt.Errorf("kstream: sub-topology %d has no source", st.ID))
		}
		if st.Global {
			for _, n := range st.Nodes {
				if n.Kind == KindSink {
					errs = append(errs, fmt.Errorf("kstream: global table sub-topology %d cannot write to topic %s (node %s)", st.ID, n.Topic, n.Name))
				}
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// InternalTopics lists the internal topics (repartition topics and changelogs)
// with the sub-topology that writes them, sorted by name.
func (t *Topology) InternalTopics() []TopicRef {
	seen := map[TopicRef]bool{}
	var out []TopicRef
	for _, n := range t.Nodes {
		if n.Topic.Internal && !seen[n.Topic] {
			seen[n.Topic] = true
			out = append(out, n.Topic)
		}
	}
	for _, s := range t.Stores {
		if s.Changelog.Internal && !seen[s.Changelog] {
			seen[s.Changelog] = true
			out = append(out, s.Changelog)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Describe renders the topology as stable text, one block per sub-topology.
func (t *Topology) Describe() string {
	var b strings.Builder
	b.WriteString("Topologies:\n")
	for _, st := range t.SubTopologies {
		if st.Global {
			fmt.Fprintf(&b, "  Sub-topology: %d for global store (will not generate tasks)\n", st.ID)
		} else {
			fmt.Fprintf(&b, "  Sub-topology: %d\n", st.ID)
		}
		for _, n := range st.Nodes {
			switch n.Kind {
			case KindSource:
				from := ""
				if n.FromLatest {
					from = ", from latest"
				}
				fmt.Fprintf(&b, "    Source: %s (topic: %s%s)\n", n.Name, n.Topic, from)
			case KindSink:
				fmt.Fprintf(&b, "    Sink: %s (topic: %s)\n", n.Name, n.Topic)
			default:
				fmt.Fprintf(&b, "    Processor: %s (%s", n.Name, n.Op)
				if len(n.Stores) > 0 {
					fmt.Fprintf(&b, ", stores: [%s]", strings.Join(n.Stores, ", "))
				}
				b.WriteString(")\n")
			}
			if len(n.Children) > 0 {
				fmt.Fprintf(&b, "      --> %s\n", joinNames(n.Children))
			}
			if len(n.Parents) > 0 {
				fmt.Fprintf(&b, "      <-- %s\n", joinNames(n.Parents))
			}
		}
		for _, s := range st.Stores {
			fmt.Fprintf(&b, "    Store: %s (changelog: %s)\n", s.Name, s.Changelog)
		}
	}
	return b.String()
}

func joinNames(ns []*Node) string {
	names := make([]string, len(ns))
	for i, n := range ns {
		names[i] = n.Name
	}
	return strings.Join(names, ", ")
}

// Mermaid renders the topology as a Mermaid flowchart: one subgraph per
// sub-topology, topics as stadium-shaped nodes linking them.
func (t *Topology) Mermaid() string {
	var b strings.Builder
	b.WriteString("flowchart TD\n")
	topics := map[string]string{}
	topicID := func(ref TopicRef) string {
		s := ref.String()
		id, ok := topics[s]
		if !ok {
			id = "t" + strconv.Itoa(len(topics))
			topics[s] = id
			fmt.Fprintf(&b, "  %s([%q])\n", id, s)
		}
		return id
	}
	for _, st := range t.SubTopologies {
		fmt.Fprintf(&b, "  subgraph s%d [\"Sub-topology %d\"]\n", st.ID, st.ID)
		for _, n := range st.Nodes {
			fmt.Fprintf(&b, "    n%d[\"%s<br/>%s\"]\n", n.ID, n.Name, n.Op)
		}
		b.WriteString("  end\n")
	}
	for _, n := range t.Nodes {
		switch n.Kind {
		case KindSource:
			fmt.Fprintf(&b, "  %s --> n%d\n", topicID(n.Topic), n.ID)
		case KindSink:
			fmt.Fprintf(&b, "  n%d --> %s\n", n.ID, topicID(n.Topic))
		}
		for _, c := range n.Children {
			fmt.Fprintf(&b, "  n%d --> n%d\n", n.ID, c.ID)
		}
	}
	return b.String()
}
