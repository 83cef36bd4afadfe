package kafkaio

import (
	"encoding/binary"
	"errors"
	"slices"
	"sort"
	"sync/atomic"

	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// balancer assigns tasks, not partitions: partition p of every topic a
// sub-topology reads goes to one member, so co-partitioned topics stay
// together. It is cooperative (KIP-429): a task keeps its previous owner when
// the balance allows, and a task that moves is first revoked, then assigned
// in the next round.
//
// With standbys > 0, the leader also places that many standby replicas of
// every stateful task on members other than its owner, and sends each member
// its standby tasks in the user data of its assignment. Members advertise
// the standby tasks they hold in the user data of their join metadata, so
// that a standby stays where its state is warm, and an orphaned task (its
// owner left) goes to a member holding a standby of it.
type balancer struct {
	groups   [][]string // per sub-topology, the topics it reads
	stateful []bool     // per sub-topology: has stores a standby keeps warm
	standbys int

	// warm is the standby tasks this member holds now (advertised);
	// assigned is the standby tasks of the latest assignment received.
	warm     atomic.Pointer[[]taskKey]
	assigned atomic.Pointer[[]taskKey]
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
	if w := b.warm.Load(); w != nil {
		meta.UserData = appendTasks(nil, *w)
	}
	return meta.AppendTo(nil)
}

func (b *balancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(assignment); err != nil {
		return nil, fmt.Errorf("kafkaio: parsing the group assignment: %w", err)
	}
	standbys, err := parseTasks(a.UserData)
	if err != nil {
		return nil, fmt.Errorf("kafkaio: parsing the standby tasks of the group assignment: %w", err)
	}
	b.assigned.Store(&standbys)
	m := make(map[string][]int32, len(a.Topics))
	for _, t := range a.Topics {
		m[t.Topic] = t.Partitions
	}
	return m, nil
}

// Task lists in user data: a version byte (1), then uvarint pairs
// (sub-topology, partition).
const tasksVersion = 1

var errTasks = errors.New("malformed task list")

func appendTasks(dst []byte, tasks []taskKey) []byte {
	dst = append(dst, tasksVersion)
	for _, k := range tasks {
		dst = binary.AppendUvarint(dst, uint64(k.sub))
		dst = binary.AppendUvarint(dst, uint64(k.p))
	}
	return dst
}

// parseTasks reads a task list; empty input is an empty list (a member or
// leader without standbys).
func parseTasks(b []byte) ([]taskKey, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if b[0] != tasksVersion {
		return nil, fmt.Errorf("%w: version %d", errTasks, b[0])
	}
	b = b[1:]
	var out []taskKey
	for len(b) > 0 {
		sub, n := binary.Uvarint(b)
		if n <= 0 || sub > 1<<20 {
			return nil, errTasks
		}
		b = b[n:]
		p, n := binary.Uvarint(b)
		if n <= 0 || p > 1<<31-1 {
			return nil, errTasks
		}
		b = b[n:]
		out = append(out, taskKey{int(sub), int32(p)})
	}
	return out, nil
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
	// Previous owners, by the highest generation claiming them; and the
	// members holding standbys.
	owner := map[taskKey]int{}
	ownerGen := map[taskKey]int32{}
	warm := map[taskKey][]int{}
	for i := range members {
		_, meta := cb.MemberAt(i)
		if held, err := parseTasks(meta.UserData); err == nil {
			for _, k := range held {
				warm[k] = append(warm[k], i)
			}
		}
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
	// Stateful and stateless tasks are balanced separately (as in Kafka
	// Streams), so that the state, and the standbys, spread evenly too.
	var classes [2][]taskKey
	for _, k := range tasks {
		if k.sub < len(b.stateful) && b.stateful[k.sub] {
			classes[0] = append(classes[0], k)
		} else {
			classes[1] = append(classes[1], k)
		}
	}
	total := make([]int, len(members))
	assigned := make(map[taskKey]int, len(tasks))
	for _, class := range classes {
		b.balanceClass(class, len(members), owner, warm, total, assigned)
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
	if b.standbys <= 0 {
		return plan
	}
	return &standbyPlan{BalancePlan: plan, members: members,
		standbys: b.placeStandbys(tasks, assigned, owner, warm, len(members))}
}

// balanceClass assigns tasks to members, perfectly balanced within the
// class: every member gets base tasks, extra of them one more. A task stays
// with its previous owner when the balance allows; an orphaned task goes to a
// member holding a standby of it when the balance allows, else to the least
// loaded (in the class, then in total).
func (b *balancer) balanceClass(tasks []taskKey, nMembers int, owner map[taskKey]int, warm map[taskKey][]int, total []int, assigned map[taskKey]int) {
	base, extra := len(tasks)/nMembers, len(tasks)%nMembers
	load := make([]int, nMembers)
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
		total[m]++
		return true
	}
	for _, k := range tasks {
		if m, ok := owner[k]; ok && take(m) {
			assigned[k] = m
		}
	}
	byLoad := make([]int, nMembers)
	for _, k := range tasks {
		if _, ok := assigned[k]; ok {
			continue
		}
		for i := range byLoad {
			byLoad[i] = i
		}
		sort.SliceStable(byLoad, func(i, j int) bool {
			mi, mj := byLoad[i], byLoad[j]
			if load[mi] != load[mj] {
				return load[mi] < load[mj]
			}
			return total[mi] < total[mj]
		})
		for _, m := range append(append([]int(nil), warm[k]...), byLoad...) {
			if take(m) {
				assigned[k] = m
				break
			}
		}
	}
}

// placeStandbys gives every stateful task up to b.standbys standbys on
// members other than the one it is assigned to: first on members already
// holding its state (standbys, or its previous owner when the task moves),
// then on the members with the fewest standbys.
func (b *balancer) placeStandbys(tasks []taskKey, assigned, owner map[taskKey]int, warm map[taskKey][]int, nMembers int) [][]taskKey {
	out := make([][]taskKey, nMembers)
	count := make([]int, nMembers)
	for _, k := range tasks {
		if k.sub >= len(b.stateful) || !b.stateful[k.sub] {
			continue
		}
		active := assigned[k]
		var prefer []int
		if m, ok := owner[k]; ok && m != active {
			prefer = append(prefer, m)
		}
		prefer = append(prefer, warm[k]...)
		byCount := make([]int, nMembers)
		for i := range byCount {
			byCount[i] = i
		}
		sort.SliceStable(byCount, func(i, j int) bool { return count[byCount[i]] < count[byCount[j]] })
		placed := 0
		for _, m := range append(prefer, byCount...) {
			if placed == b.standbys {
				break
			}
			if m == active || slices.Contains(out[m], k) {
				continue
			}
			out[m] = append(out[m], k)
			count[m]++
			placed++
		}
	}
	return out
}

// standbyPlan is a balance plan plus each member's standby tasks, sent in the
// user data of its assignment.
type standbyPlan struct {
	*kgo.BalancePlan
	members  []kmsg.JoinGroupResponseMember
	standbys [][]taskKey // by member index
}

func (p *standbyPlan) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment {
	byID := make(map[string][]taskKey, len(p.members))
	for i, m := range p.members {
		byID[m.MemberID] = p.standbys[i]
	}
	out := p.BalancePlan.IntoSyncAssignment()
	for i := range out {
		tasks, ok := byID[out[i].MemberID]
		if !ok {
			continue
		}
		var a kmsg.ConsumerMemberAssignment
		if err := a.ReadFrom(out[i].MemberAssignment); err != nil {
			continue // cannot happen: kgo just encoded it
		}
		a.UserData = appendTasks(nil, tasks)
		out[i].MemberAssignment = a.AppendTo(nil)
	}
	return out
}
