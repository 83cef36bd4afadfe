package kafkaio

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

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
// the standby tasks they hold, and the tasks they hold local state of, in
// the user data of their join metadata, so that a standby stays where its
// state is warm, and an orphaned task (its owner left) goes to a member
// holding a standby or local state of it. With warmups, see holdForWarmups.
//
// Members also advertise their address (AdvertisedAddr), and the leader
// sends every member the active and standby tasks of every member that has
// one: any instance can tell which instance holds a key (key discovery for
// interactive queries).
type balancer struct {
	groups   [][]string // per sub-topology, the topics it reads
	stateful []bool     // per sub-topology: has stores a standby keeps warm
	standbys int
	// warmups is the most warmup replicas placed at once (WarmupReplicas);
	// 0: a task moves at once, as the balance says.
	warmups int
	addr    string // this member's advertised address, "" if none
	// onJoin, if set, gets the partitions the member owns each time it
	// joins the group (App.noteOwned).
	onJoin func(current map[string][]int32)

	// warm is the standby tasks this member holds now (advertised); caught
	// those of them within the acceptable recovery lag (advertised with
	// warmups); assigned is the standby tasks of the latest assignment
	// received, warmups included; warming its warmup tasks; hosts the
	// members' tasks it listed.
	warm     atomic.Pointer[[]taskKey]
	caught   atomic.Pointer[[]taskKey]
	assigned atomic.Pointer[[]taskKey]
	warming  atomic.Pointer[[]taskKey]
	hosts    atomic.Pointer[[]hostTasks]
	// local is the stateful tasks this member holds local state of without
	// running them (App.advertiseLocal), advertised with the standbys;
	// localCaught those whose checkpoints were within the acceptable
	// recovery lag when last looked at (App.localCaughtUp), advertised as
	// caught up with warmups: a returning instance takes them back at once.
	local       atomic.Pointer[[]taskKey]
	localCaught atomic.Pointer[[]taskKey]
	// warmupsReceived counts the warmup tasks of the assignments received.
	warmupsReceived atomic.Int64
	// active is the active tasks of the latest assignment received: a
	// standby of one is about to be promoted, not dropped (reconcile may
	// run between the assignment and onAssigned).
	active atomic.Pointer[[]taskKey]
}

// hostTasks is the tasks of a member with an advertised address.
type hostTasks struct {
	addr            string
	active, standby []taskKey
}

type taskKey struct {
	sub int
	p   int32
}

func (b *balancer) ProtocolName() string { return "kstream-copartition" }
func (b *balancer) IsCooperative() bool  { return true }

func (b *balancer) JoinGroupMetadata(interests []string, current map[string][]int32, generation int32) []byte {
	if b.onJoin != nil {
		b.onJoin(current)
	}
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
	var warm []taskKey
	if w := b.warm.Load(); w != nil {
		warm = slices.Clone(*w)
	}
	if l := b.local.Load(); l != nil {
		for _, k := range *l {
			if !slices.Contains(warm, k) {
				warm = append(warm, k)
			}
		}
	}
	var caught []taskKey
	if c := b.caught.Load(); c != nil {
		caught = slices.Clone(*c)
	}
	if lc, l := b.localCaught.Load(), b.local.Load(); lc != nil && l != nil {
		for _, k := range *lc {
			if slices.Contains(*l, k) && !slices.Contains(caught, k) {
				caught = append(caught, k)
			}
		}
	}
	meta.UserData = appendMemberData(nil, b.addr, warm, caught, b.warmups > 0)
	return meta.AppendTo(nil)
}

func (b *balancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(assignment); err != nil {
		return nil, fmt.Errorf("kafkaio: parsing the group assignment: %w", err)
	}
	standbys, warmups, hosts, err := parseAssignmentData(a.UserData)
	if err != nil {
		return nil, fmt.Errorf("kafkaio: parsing the user data of the group assignment: %w", err)
	}
	m := make(map[string][]int32, len(a.Topics))
	var active []taskKey
	for _, t := range a.Topics {
		m[t.Topic] = t.Partitions
		for sub, ts := range b.groups {
			if slices.Contains(ts, t.Topic) {
				for _, p := range t.Partitions {
					if k := (taskKey{sub, p}); !slices.Contains(active, k) {
						active = append(active, k)
					}
				}
			}
		}
	}
	b.active.Store(&active)
	b.assigned.Store(&standbys)
	b.warming.Store(&warmups)
	b.warmupsReceived.Add(int64(len(warmups)))
	b.hosts.Store(&hosts)
	return m, nil
}

// User data. Version 1 (standbys only, no addresses): a task list, uvarint
// pairs (sub-topology, partition) after the version byte, in the join
// metadata (the standbys held) and in the assignment (the standbys to hold).
// Version 2, written now:
//
//	join metadata: 2, address, task list (the standbys held)
//	assignment:    2, task list (the standbys to hold), uvarint count of
//	               hosts, each: address, task list (active), task list (standby)
//
// where an address is a uvarint length then its bytes, and a task list
// (in version 2) a uvarint count then the pairs. Version 3, written with
// warmups (WarmupReplicas), adds what they need:
//
//	join metadata: 3, address, task list (the standbys held), task list
//	               (those within the acceptable recovery lag)
//	assignment:    3, task list (the standbys to hold, warmups included),
//	               task list (the warmups), then the hosts as in version 2
const (
	userDataV1 = 1
	userDataV2 = 2
	userDataV3 = 3
)

var errUserData = errors.New("malformed user data")

// appendTasks appends a version 1 task list.
func appendTasks(dst []byte, tasks []taskKey) []byte {
	dst = append(dst, userDataV1)
	return appendTaskPairs(dst, tasks)
}

func appendTaskPairs(dst []byte, tasks []taskKey) []byte {
	for _, k := range tasks {
		dst = binary.AppendUvarint(dst, uint64(k.sub))
		dst = binary.AppendUvarint(dst, uint64(k.p))
	}
	return dst
}

func appendTaskList(dst []byte, tasks []taskKey) []byte {
	return appendTaskPairs(binary.AppendUvarint(dst, uint64(len(tasks))), tasks)
}

func appendString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

// appendMemberData appends the user data of a member's join metadata:
// version 3 with warmups, else version 2 (without caught).
func appendMemberData(dst []byte, addr string, warm, caught []taskKey, warmups bool) []byte {
	if !warmups {
		return appendTaskPairs(appendString(append(dst, userDataV2), addr), warm)
	}
	return appendTaskList(appendTaskList(appendString(append(dst, userDataV3), addr), warm), caught)
}

// appendAssignmentData appends the user data of a member's assignment:
// version 3 with warmups (even none now), else version 2.
func appendAssignmentData(dst []byte, standbys, warmups []taskKey, hosts []hostTasks, v3 bool) []byte {
	if v3 {
		dst = appendTaskList(appendTaskList(append(dst, userDataV3), standbys), warmups)
	} else {
		dst = appendTaskList(append(dst, userDataV2), standbys)
	}
	dst = binary.AppendUvarint(dst, uint64(len(hosts)))
	for _, h := range hosts {
		dst = appendTaskList(appendTaskList(appendString(dst, h.addr), h.active), h.standby)
	}
	return dst
}

// userDataReader reads user data, remembering the first error.
type userDataReader struct {
	b   []byte
	err error
}

func (r *userDataReader) uvarint(max uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > max {
		r.err = errUserData
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *userDataReader) task() taskKey {
	sub := r.uvarint(1 << 20)
	return taskKey{int(sub), int32(r.uvarint(1<<31 - 1))}
}

// pairs reads task pairs to the end.
func (r *userDataReader) pairs() []taskKey {
	var out []taskKey
	for r.err == nil && len(r.b) > 0 {
		out = append(out, r.task())
	}
	return out
}

func (r *userDataReader) list() []taskKey {
	n := r.uvarint(uint64(len(r.b)))
	var out []taskKey
	for i := uint64(0); i < n && r.err == nil; i++ {
		out = append(out, r.task())
	}
	return out
}

func (r *userDataReader) string() string {
	n := r.uvarint(uint64(len(r.b)))
	if r.err != nil {
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *userDataReader) version() byte {
	if len(r.b) == 0 {
		r.err = errUserData
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	if v != userDataV1 && v != userDataV2 && v != userDataV3 {
		r.err = fmt.Errorf("%w: version %d", errUserData, v)
	}
	return v
}

// parseTasks reads a version 1 task list; empty input is an empty list.
func parseTasks(b []byte) ([]taskKey, error) {
	if len(b) == 0 {
		return nil, nil
	}
	r := userDataReader{b: b}
	if v := r.version(); r.err == nil && v != userDataV1 {
		r.err = fmt.Errorf("%w: version %d, want a task list", errUserData, v)
	}
	out := r.pairs()
	return out, r.err
}

// parseMemberData reads the user data of a member's join metadata.
func parseMemberData(b []byte) (addr string, warm, caught []taskKey, err error) {
	if len(b) == 0 {
		return "", nil, nil, nil
	}
	r := userDataReader{b: b}
	switch r.version() {
	case userDataV3:
		addr = r.string()
		warm = r.list()
		caught = r.list()
		if r.err == nil && len(r.b) > 0 {
			r.err = errUserData
		}
		return addr, warm, caught, r.err
	case userDataV2:
		addr = r.string()
	}
	warm = r.pairs()
	return addr, warm, nil, r.err
}

// parseAssignmentData reads the user data of an assignment.
func parseAssignmentData(b []byte) (standbys, warmups []taskKey, hosts []hostTasks, err error) {
	if len(b) == 0 {
		return nil, nil, nil, nil
	}
	r := userDataReader{b: b}
	v := r.version()
	if v == userDataV1 {
		return r.pairs(), nil, nil, r.err
	}
	standbys = r.list()
	if v == userDataV3 {
		warmups = r.list()
	}
	n := r.uvarint(uint64(len(r.b)))
	for i := uint64(0); i < n && r.err == nil; i++ {
		h := hostTasks{addr: r.string()}
		h.active = r.list()
		h.standby = r.list()
		hosts = append(hosts, h)
	}
	if r.err == nil && len(r.b) > 0 {
		r.err = errUserData
	}
	return standbys, warmups, hosts, r.err
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
	warm, caught := map[taskKey][]int{}, map[taskKey][]int{}
	addrs := make([]string, len(members))
	for i := range members {
		_, meta := cb.MemberAt(i)
		if addr, held, up, err := parseMemberData(meta.UserData); err == nil {
			addrs[i] = addr
			for _, k := range held {
				warm[k] = append(warm[k], i)
			}
			for _, k := range up {
				caught[k] = append(caught[k], i)
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
	var warmups [][]taskKey
	for i, class := range classes {
		b.balanceClass(class, len(members), owner, warm, total, assigned)
		if i == 0 && b.warmups > 0 {
			warmups = b.holdForWarmups(class, owner, caught, total, assigned, len(members))
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
	var standbys [][]taskKey
	if b.standbys > 0 {
		standbys = b.placeStandbys(tasks, assigned, owner, warm, len(members))
	}
	if b.standbys > 0 || b.warmups > 0 {
		standbys = b.addInterim(standbys, classes[0], assigned, owner, warmups, len(members))
	}
	hosts := b.hostTasks(plan, members, addrs, topicGroup, standbys)
	if standbys == nil && hosts == nil && b.warmups == 0 {
		return plan
	}
	return &userDataPlan{BalancePlan: plan, members: members, standbys: standbys, warmups: warmups, hosts: hosts}
}

// holdForWarmups keeps each stateful task that the balance moves to a
// member without its state (none advertised within the acceptable recovery
// lag) on its owner, and gives that member a warmup replica of it, up to
// b.warmups warmups in all (Kafka Streams' high-availability assignment,
// KIP-441): the task moves once the warmup has caught up, at the rebalance
// its member then asks for, instead of being unavailable while it restores
// there. It returns the warmups by member.
func (b *balancer) holdForWarmups(tasks []taskKey, owner map[taskKey]int, caught map[taskKey][]int, total []int, assigned map[taskKey]int, nMembers int) [][]taskKey {
	out := make([][]taskKey, nMembers)
	placed := 0
	for _, k := range tasks {
		to := assigned[k]
		from, ok := owner[k]
		if !ok || from == to || slices.Contains(caught[k], to) {
			continue
		}
		assigned[k] = from
		total[from]++
		total[to]--
		if placed < b.warmups {
			out[to] = append(out[to], k)
			placed++
		}
	}
	return out
}

// addInterim adds to the standbys (nil: none yet) the warmups, and, for
// each stateful task that moves (its owner revokes it in this round, its
// new owner gets it in the next), a standby on its new owner in between:
// the replica it may hold already stays, to be promoted in the next round
// rather than dropped and restored again.
func (b *balancer) addInterim(standbys [][]taskKey, stateful []taskKey, assigned, owner map[taskKey]int, warmups [][]taskKey, nMembers int) [][]taskKey {
	if standbys == nil {
		standbys = make([][]taskKey, nMembers)
	}
	add := func(m int, k taskKey) {
		if !slices.Contains(standbys[m], k) {
			standbys[m] = append(standbys[m], k)
		}
	}
	for m, ks := range warmups {
		for _, k := range ks {
			add(m, k)
		}
	}
	for _, k := range stateful {
		if from, ok := owner[k]; ok && from != assigned[k] {
			add(assigned[k], k)
		}
	}
	for _, ks := range standbys {
		slices.SortFunc(ks, compareTasks)
	}
	return standbys
}

// hostTasks lists the tasks of the members with an advertised address, as
// this round's plan assigns them (a task moving between members is on
// neither until the next round), sorted by address.
func (b *balancer) hostTasks(plan *kgo.BalancePlan, members []kmsg.JoinGroupResponseMember, addrs []string, topicGroup map[string]int, standbys [][]taskKey) []hostTasks {
	byID := plan.AsMemberIDMap()
	var hosts []hostTasks
	for i, m := range members {
		if addrs[i] == "" {
			continue
		}
		h := hostTasks{addr: addrs[i]}
		for topic, ps := range byID[m.MemberID] {
			sub, ok := topicGroup[topic]
			if !ok {
				continue
			}
			for _, p := range ps {
				if k := (taskKey{sub, p}); !slices.Contains(h.active, k) {
					h.active = append(h.active, k)
				}
			}
		}
		slices.SortFunc(h.active, compareTasks)
		if standbys != nil {
			h.standby = standbys[i]
		}
		hosts = append(hosts, h)
	}
	slices.SortFunc(hosts, func(x, y hostTasks) int { return strings.Compare(x.addr, y.addr) })
	return hosts
}

func compareTasks(x, y taskKey) int {
	return cmp.Or(cmp.Compare(x.sub, y.sub), cmp.Compare(x.p, y.p))
}

// balanceClass assigns tasks to members, perfectly balanced within the
// class: every member gets base tasks, extra of them one more. A task stays
// with its previous owner when the balance allows; an owner with more than
// its share keeps first the tasks no other member holds state of (a
// standby, or local state), so that it gives up those others hold. A task
// given up, or orphaned, goes to a member holding its state when the
// balance allows, else to the least loaded (in the class, then in total).
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
	warmElsewhere := func(k taskKey, owner int) bool {
		for _, m := range warm[k] {
			if m != owner {
				return true
			}
		}
		return false
	}
	for _, second := range []bool{false, true} {
		for _, k := range tasks {
			if _, done := assigned[k]; done {
				continue
			}
			if m, ok := owner[k]; ok && warmElsewhere(k, m) == second && take(m) {
				assigned[k] = m
			}
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

// userDataPlan is a balance plan plus, in the user data of every member's
// assignment, its standby tasks and the tasks of every member with an
// advertised address.
type userDataPlan struct {
	*kgo.BalancePlan
	members  []kmsg.JoinGroupResponseMember
	standbys [][]taskKey // by member index; nil without standbys
	warmups  [][]taskKey // by member index; nil without warmups (then version 2)
	hosts    []hostTasks
}

func (p *userDataPlan) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment {
	index := make(map[string]int, len(p.members))
	for i, m := range p.members {
		index[m.MemberID] = i
	}
	out := p.BalancePlan.IntoSyncAssignment()
	for i := range out {
		m, ok := index[out[i].MemberID]
		if !ok {
			continue
		}
		var a kmsg.ConsumerMemberAssignment
		if err := a.ReadFrom(out[i].MemberAssignment); err != nil {
			continue // cannot happen: kgo just encoded it
		}
		var standbys, warmups []taskKey
		if p.standbys != nil {
			standbys = p.standbys[m]
		}
		if p.warmups != nil {
			warmups = p.warmups[m]
		}
		a.UserData = appendAssignmentData(nil, standbys, warmups, p.hosts, p.warmups != nil)
		out[i].MemberAssignment = a.AppendTo(nil)
	}
	return out
}
