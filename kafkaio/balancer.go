package kafkaio

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// balancer assigns tasks, not partitions: partition p of every topic a
// sub-topology reads goes to one member, so co-partitioned topics stay
// together. It is cooperative (KIP-429): a task keeps its previous owner when
// the balance allows, and a task that moves is first revoked, then assigned
// in the next round. Members advertise userData (their query address).
type balancer struct {
	groups   [][]string // per sub-topology, the topics it reads
	userData []byte
}

type taskKey struct {
	sub int
	p   int32
}

func (b *balancer) ProtocolName() string { return "kstream-copartition" }
func (b *balancer) IsCooperative() bool  { return true }

func (b *balancer) JoinGroupMetadata(interests []string, current map[string][]int32, generation int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 3
	meta.Topics = interests
	meta.Generation = generation
	for t, ps := range current {
		o := kmsg.NewConsumerMemberMetadataOwnedPartition()
		o.Topic = t
		o.Partitions = ps
		meta.OwnedPartitions = append(meta.OwnedPartitions, o)
	}
	sort.Slice(meta.OwnedPartitions, func(i, j int) bool { return meta.OwnedPartitions[i].Topic < meta.OwnedPartitions[j].Topic })
	meta.UserData = b.userData
	return meta.AppendTo(nil)
}

func (b *balancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	return kgo.ParseConsumerSyncAssignment(assignment)
}

func (b *balancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	if err != nil {
		return nil, nil, err
	}
	return cb, cb.MemberTopics(), nil
}

// Balance implements kgo.ConsumerBalancerBalance.
func (b *balancer) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	members := cb.Members()
	plan := cb.NewPlan()
	if len(members) == 0 {
		return plan
	}
	topicGroup := map[string]int{}
	for sub, ts := range b.groups {
		for _, t := range ts {
			topicGroup[t] = sub
		}
	}
	// Previous owners, by the highest generation claiming them.
	owner := map[taskKey]int{}
	ownerGen := map[taskKey]int32{}
	for i := range members {
		_, meta := cb.MemberAt(i)
		for _, o := range meta.OwnedPartitions {
			sub, ok := topicGroup[o.Topic]
			if !ok {
				continue
			}
			for _, p := range o.Partitions {
				k := taskKey{sub, p}
				if g, seen := ownerGen[k]; !seen || meta.Generation > g {
					owner[k], ownerGen[k] = i, meta.Generation
				}
			}
		}
	}
	var tasks []taskKey
	for sub, ts := range b.groups {
		var n int32
		for _, t := range ts {
			if c, ok := topics[t]; ok && (n == 0 || c < n) {
				n = c
			}
		}
		for p := range n {
			tasks = append(tasks, taskKey{sub, p})
		}
	}
	// Perfect balance: every member gets base tasks, extra of them one more.
	base, extra := len(tasks)/len(members), len(tasks)%len(members)
	load := make([]int, len(members))
	extraUsed := 0
	take := func(m int) bool {
		switch {
		case load[m] < base:
		case load[m] == base && extraUsed < extra:
			extraUsed++
		default:
			return false
		}
		load[m]++
		return true
	}
	assigned := make(map[taskKey]int, len(tasks))
	for _, k := range tasks {
		if m, ok := owner[k]; ok && take(m) {
			assigned[k] = m
		}
	}
	for _, k := range tasks {
		if _, ok := assigned[k]; ok {
			continue
		}
		order := make([]int, len(members))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(i, j int) bool { return load[order[i]] < load[order[j]] })
		for _, m := range order {
			if take(m) {
				assigned[k] = m
				break
			}
		}
	}
	for _, k := range tasks {
		m := assigned[k]
		for _, t := range b.groups[k.sub] {
			if _, ok := topics[t]; ok {
				plan.AddPartition(&members[m], t, k.p)
			}
		}
	}
	plan.AdjustCooperative(cb)
	return plan
}
