package kafkaio

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kstreamgo/kstream/internal/runtime"
)

// member builds a join-group member that owned the given partitions.
func member(b *balancer, id string, gen int32, owned map[string][]int32) kmsg.JoinGroupResponseMember {
	m := kmsg.NewJoinGroupResponseMember()
	m.MemberID = id
	m.ProtocolMetadata = b.JoinGroupMetadata([]string{"a", "b", "c"}, owned, gen)
	return m
}

func balance(t *testing.T, b *balancer, members []kmsg.JoinGroupResponseMember, topics map[string]int32) map[string]map[string][]int32 {
	t.Helper()
	gmb, _, err := b.MemberBalancer(members)
	if err != nil {
		t.Fatal(err)
	}
	into, err := gmb.(kgo.GroupMemberBalancerOrError).BalanceOrError(topics)
	if err != nil {
		t.Fatal(err)
	}
	return into.(*kgo.BalancePlan).AsMemberIDMap()
}

func TestBalancerKeepsCoPartitionedTopicsTogether(t *testing.T) {
	// Sub-topology 0 reads a and b (co-partitioned, 6 partitions); 1 reads c (4).
	b := &balancer{groups: [][]string{{"a", "b"}, {"c"}}}
	topics := map[string]int32{"a": 6, "b": 6, "c": 4}
	var members []kmsg.JoinGroupResponseMember
	for i := range 3 {
		members = append(members, member(b, fmt.Sprintf("m%d", i), 1, nil))
	}
	plan := balance(t, b, members, topics)
	owner := map[string]string{} // "topic/p" -> member
	load := map[string]int{}
	for m, ts := range plan {
		for topic, ps := range ts {
			for _, p := range ps {
				owner[fmt.Sprintf("%s/%d", topic, p)] = m
				if topic != "b" {
					load[m]++
				}
			}
		}
	}
	for p := range 6 {
		a, bb := owner[fmt.Sprintf("a/%d", p)], owner[fmt.Sprintf("b/%d", p)]
		if a == "" || a != bb {
			t.Errorf("partition %d: a on %q, b on %q: co-partitioned topics must go together", p, a, bb)
		}
	}
	for p := range 4 {
		if owner[fmt.Sprintf("c/%d", p)] == "" {
			t.Errorf("c/%d unassigned", p)
		}
	}
	for m, n := range load {
		if n < 3 || n > 4 { // 10 tasks over 3 members
			t.Errorf("member %s has %d tasks, want 3 or 4 (plan %v)", m, n, plan)
		}
	}
}

func TestBalancerIsStickyAndCooperative(t *testing.T) {
	b := &balancer{groups: [][]string{{"a", "b"}}}
	topics := map[string]int32{"a": 4, "b": 4}
	// m0 owned everything; m1 joins.
	members := []kmsg.JoinGroupResponseMember{
		member(b, "m0", 5, map[string][]int32{"a": {0, 1, 2, 3}, "b": {0, 1, 2, 3}}),
		member(b, "m1", -1, nil),
	}
	plan := balance(t, b, members, topics)
	// Cooperative: m0 keeps two tasks; the two that move are first revoked
	// (assigned to nobody this round).
	if got := len(plan["m0"]["a"]); got != 2 {
		t.Errorf("m0 keeps %d tasks of a, want 2: %v", got, plan)
	}
	if got := len(plan["m1"]["a"]); got != 0 {
		t.Errorf("m1 got %d partitions of a in the first round, want 0 (they must be revoked first): %v", got, plan)
	}
	// Next round: m0 owns its two; m1 gets the other two, and they are the
	// ones m0 gave up.
	kept := plan["m0"]["a"]
	members = []kmsg.JoinGroupResponseMember{
		member(b, "m0", 6, map[string][]int32{"a": kept, "b": kept}),
		member(b, "m1", 6, nil),
	}
	plan = balance(t, b, members, topics)
	if fmt.Sprint(plan["m0"]["a"]) != fmt.Sprint(kept) || len(plan["m1"]["a"]) != 2 || len(plan["m1"]["b"]) != 2 {
		t.Errorf("second round plan %v, want m0 to keep %v and m1 to get the rest of a and b", plan, kept)
	}
}

// TestPartitionerMatchesFranzGo checks kstream's murmur2 placement against
// franz-go's Java-compatible sticky key partitioner.
func TestPartitionerMatchesFranzGo(t *testing.T) {
	tp := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 10_000 {
		key := make([]byte, r.IntN(40))
		for j := range key {
			key[j] = byte(r.IntN(256))
		}
		n := int32(1 + i%64)
		want := int32(tp.Partition(&kgo.Record{Key: key}, int(n)))
		if got := runtime.PartitionForKey(key, n); got != want {
			t.Fatalf("key %x over %d partitions: kstream %d, franz-go %d", key, n, got, want)
		}
	}
}
