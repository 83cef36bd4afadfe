package main

import (
	"context"
	"fmt"
	"sync/atomic"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/serde"
)

// The join scenario enriches a stream of user records with a table of
// users.
const (
	scenarioJoin = "join"
	// joinStore names the table's store. Its changelog is the table's
	// topic, in kstream and in Kafka Streams (topology.optimization=all).
	joinStore = "users"
)

// joinTopology is SourceTable(table, in-memory store "users") and
// Source(stream) -> LeftJoinTable -> To: each stream record comes out with
// its value followed by its user's (alone if the table lacks the user).
func joinTopology(table, stream, out string) (*kstream.Topology, error) {
	b := kstream.NewBuilder()
	users := kstream.SourceTable(b, table, serde.String, serde.Bytes, kstream.Named(joinStore))
	records := kstream.Source(b, stream, serde.String, serde.Bytes)
	kstream.LeftJoinTable(records, users, joinValues).To(out, serde.String, serde.Bytes)
	return b.Build()
}

// joinValues is the joiner: v followed by the table's value, if any.
func joinValues(_ string, v, user []byte, _ bool) []byte {
	return append(append(make([]byte, 0, len(v)+len(user)), v...), user...)
}

// joinScenario: a table topic of one record per user, then
// cfg.joinRecords stream records in; one record per stream record out.
//
// The expected output is exact whatever order the two topics are processed
// in: a left join emits one record for each stream record, whether the
// table holds its user yet or not; table records emit nothing.
var joinScenario = &statefulScenario{
	name: scenarioJoin, inputs: []string{"users", "records"}, output: "enriched",
	subTopologies: 1, // table and stream are co-partitioned: one task per partition
	fill: func(ctx context.Context, cfg *config, brokers, in []string, filled *atomic.Int64) (int64, int64, string, error) {
		n := cfg.joinRecords
		if err := produceUsers(ctx, brokers, in[0], users, cfg.valueSize, filled, nil); err != nil {
			return 0, 0, "", err
		}
		err := produceUsers(ctx, brokers, in[1], n, cfg.valueSize, filled, nil)
		return int64(n), int64(n), fmt.Sprintf("table of %d users", users), err
	},
	topology:    func(in []string, out string) (*kstream.Topology, error) { return joinTopology(in[0], in[1], out) },
	streamsArgs: func(in []string) []string { return []string{"-table", in[0]} },
}
