package kstream

// Opt configures an operator.
type Opt interface {
	apply(*options)
}

type options struct {
	name   string
	stores []string
	cached bool
}

type optFunc func(*options)

func (f optFunc) apply(o *options) { f(o) }

func collect(os []Opt) options {
	var o options
	for _, x := range os {
		if x != nil {
			x.apply(&o)
		}
	}
	return o
}

// Named names the node. On a stateful node it also names the store, its
// changelog topic "<appID>-<name>-changelog" and, where the node needs one,
// its repartition topic "<appID>-<name>-repartition". Stateful nodes require a
// name, so that internal topics keep their names when the topology changes.
func Named(name string) Opt { return optFunc(func(o *options) { o.name = name }) }

// Cached makes an aggregation (Count, Reduce, Aggregate of a grouped stream
// or a grouped table, and windowed and session aggregations without
// EmitOnWindowClose, which holds results back already) hold its table's
// updates back until the task's next
// commit, one per key, as Kafka Streams' record cache does: downstream then
// sees at most one update per key per commit interval — the latest value,
// with the value it saw last as the old value — in the order the keys were
// last updated, instead of every update (a word count's output shrinks to
// one record per word per commit). A task holds at most 10,000 keys per
// cached aggregation; one more forwards them all early. The store, its
// changelog and interactive queries see every update at once. Without
// Cached (the default), every update is forwarded at once. kstest flushes
// after every input record, as Kafka Streams' TopologyTestDriver commits
// after every record, so Cached changes nothing there. Other operators
// ignore it.
func Cached() Opt { return optFunc(func(o *options) { o.cached = true }) }

// NameOf returns the name that a [Named] among opts gives, or "". Packages
// that build stateful operators on [Process] (such as dedupe) name their
// stores with it, as the operators of this package do.
func NameOf(opts ...Opt) string { return collect(opts).name }

// WithStores connects the named key-value stores to a [Process] node. A store
// named here for the first time is created (with a changelog topic
// "<appID>-<name>-changelog"); naming it on several Process nodes shares it,
// which puts them in one sub-topology. An empty name is a Build error.
func WithStores(names ...string) Opt {
	return optFunc(func(o *options) { o.stores = append(o.stores, names...) })
}
