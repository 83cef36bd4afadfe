package kafkaio

import (
	"fmt"
	"math/rand/v2"
	"slices"
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
	return balanceInto(t, b, members, topics).(*kgo.BalancePlan).AsMemberIDMap()
}

// balanceInto runs the leader's balance.
func balanceInto(t *testing.T, b *balancer, members []kmsg.JoinGroupResponseMember, topics map[string]int32) kgo.IntoSyncAssignment {
	t.Helper()
	gmb, _, err := b.MemberBalancer(members)
	if err != nil {
		t.Fatal(err)
	}
	into, err := gmb.(kgo.GroupMemberBalancerOrError).BalanceOrError(topics)
	if err != nil {
		t.Fatal(err)
	}
	return into
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

// syncAssignments balances and returns, per member, what the member parses
// from its SyncGroup assignment: partitions, standby tasks, and hosts.
func syncAssignments(t *testing.T, b *balancer, members []kmsg.JoinGroupResponseMember, topics map[string]int32) (map[string]map[string][]int32, map[string][]taskKey, map[string][]hostTasks) {
	t.Helper()
	into := balanceInto(t, b, members, topics)
	parts, standbys, hosts := map[string]map[string][]int32{}, map[string][]taskKey{}, map[string][]hostTasks{}
	for _, a := range into.IntoSyncAssignment() {
		recv := &balancer{groups: b.groups}
		p, err := recv.ParseSyncAssignment(a.MemberAssignment)
		if err != nil {
			t.Fatal(err)
		}
		parts[a.MemberID], standbys[a.MemberID], hosts[a.MemberID] = p, *recv.assigned.Load(), *recv.hosts.Load()
	}
	return parts, standbys, hosts
}

func TestBalancerPlacesStandbys(t *testing.T) {
	// Sub-topology 0 is stateless (reads a), 1 stateful (reads r): 6 tasks each.
	b := &balancer{groups: [][]string{{"a"}, {"r"}}, stateful: []bool{false, true}, standbys: 1}
	topics := map[string]int32{"a": 6, "r": 6}
	var members []kmsg.JoinGroupResponseMember
	for i := range 3 {
		members = append(members, member(b, fmt.Sprintf("m%d", i), 1, nil))
	}
	parts, standbys, _ := syncAssignments(t, b, members, topics)
	owner := map[int32]string{}
	for m, ts := range parts {
		if n := len(ts["r"]); n != 2 {
			t.Errorf("member %s runs %d stateful tasks, want 2 (stateful tasks are balanced on their own): %v", m, n, parts)
		}
		for _, p := range ts["r"] {
			owner[p] = m
		}
	}
	held := map[int32]int{}
	for m, ks := range standbys {
		if len(ks) != 2 {
			t.Errorf("member %s holds %d standbys, want 2: %v", m, len(ks), standbys)
		}
		for _, k := range ks {
			if k.sub != 1 {
				t.Errorf("member %s got a standby of stateless task %v", m, k)
			}
			if owner[k.p] == m {
				t.Errorf("member %s holds a standby of task %v, which it runs", m, k)
			}
			held[k.p]++
		}
	}
	for p := range int32(6) {
		if held[p] != 1 {
			t.Errorf("task 1_%d has %d standbys, want 1", p, held[p])
		}
	}

}

func TestBalancerGivesOrphansToTheirStandbys(t *testing.T) {
	// The members hold the orphans' state as standbys, or as local state
	// (App.advertiseLocal): both are advertised as warm.
	for _, local := range []bool{false, true} {
		testOrphansToWarmMembers(t, local)
	}
}

func testOrphansToWarmMembers(t *testing.T, local bool) {
	b := &balancer{groups: [][]string{{"r"}}, stateful: []bool{true}, standbys: 1}
	topics := map[string]int32{"r": 6}
	// Tasks 0 and 1 lost their owner; m1 and m2 have room for one each, and
	// hold their state crosswise to the order a load-only choice takes.
	join := func(id string, owned []int32, warm ...taskKey) kmsg.JoinGroupResponseMember {
		mb := &balancer{groups: b.groups}
		if local {
			mb.local.Store(&warm)
		} else {
			mb.warm.Store(&warm)
		}
		return member(mb, id, 3, map[string][]int32{"r": owned})
	}
	members := []kmsg.JoinGroupResponseMember{
		join("m0", []int32{2, 3}),
		join("m1", []int32{4}, taskKey{0, 1}),
		join("m2", []int32{5}, taskKey{0, 0}),
	}
	plan, standbys, _ := syncAssignments(t, b, members, topics)
	if !slices.Contains(plan["m2"]["r"], 0) || !slices.Contains(plan["m1"]["r"], 1) {
		t.Errorf("local state %v: orphaned tasks went elsewhere than to the members holding their state (0 to m2, 1 to m1): %v", local, plan)
	}
	// Their former holders now run them: they get standbys elsewhere.
	for m, ks := range standbys {
		for _, k := range ks {
			if slices.Contains(plan[m]["r"], k.p) {
				t.Errorf("member %s holds a standby of task %v, which it runs", m, k)
			}
		}
	}
}

func TestTaskListRoundTrip(t *testing.T) {
	in := []taskKey{{0, 0}, {3, 17}, {1 << 10, 1<<31 - 1}}
	out, err := parseTasks(appendTasks(nil, in))
	if err != nil || fmt.Sprint(out) != fmt.Sprint(in) {
		t.Fatalf("round trip: %v, %v; want %v", out, err, in)
	}
	for _, bad := range [][]byte{{2}, {1, 0x80}, {1, 1}} {
		if _, err := parseTasks(bad); err == nil {
			t.Errorf("parseTasks(%x): no error", bad)
		}
	}
}

// TestBalancerSendsHosts checks key discovery's data: members with an
// advertised address are listed, in every member's assignment, with the
// tasks the plan gives them and their standbys; a member without an address
// is not listed, but still learns the others.
func TestBalancerSendsHosts(t *testing.T) {
	b := &balancer{groups: [][]string{{"a"}, {"r"}}, stateful: []bool{false, true}, standbys: 1}
	topics := map[string]int32{"a": 4, "r": 4}
	var members []kmsg.JoinGroupResponseMember
	for i, addr := range []string{"h0:1", "h1:1", ""} {
		members = append(members, member(&balancer{groups: b.groups, addr: addr}, fmt.Sprintf("m%d", i), 1, nil))
	}
	parts, standbys, hosts := syncAssignments(t, b, members, topics)
	addr := map[string]string{"m0": "h0:1", "m1": "h1:1"}
	for m, hs := range hosts {
		if fmt.Sprint(hs) != fmt.Sprint(hosts["m0"]) {
			t.Errorf("member %s got hosts %v, m0 got %v: all must get the same", m, hs, hosts["m0"])
		}
	}
	hs := hosts["m2"]
	if len(hs) != 2 || hs[0].addr != "h0:1" || hs[1].addr != "h1:1" {
		t.Fatalf("hosts %v, want h0:1 and h1:1 (m2 advertises no address)", hs)
	}
	for i, h := range hs {
		m := fmt.Sprintf("m%d", i)
		if addr[m] != h.addr {
			t.Fatalf("host %d is %s, want %s", i, h.addr, addr[m])
		}
		var want []taskKey
		for sub, topic := range []string{"a", "r"} {
			for _, p := range parts[m][topic] {
				want = append(want, taskKey{sub, p})
			}
		}
		slices.SortFunc(want, compareTasks)
		if fmt.Sprint(h.active) != fmt.Sprint(want) || len(want) == 0 {
			t.Errorf("host %s lists active tasks %v, its assignment is %v", h.addr, h.active, want)
		}
		if fmt.Sprint(h.standby) != fmt.Sprint(standbys[m]) {
			t.Errorf("host %s lists standbys %v, its assignment has %v", h.addr, h.standby, standbys[m])
		}
	}
}

func TestUserDataRoundTrip(t *testing.T) {
	tasks := []taskKey{{0, 0}, {3, 17}, {1 << 10, 1<<31 - 1}}
	addr, warm, caught, err := parseMemberData(appendMemberData(nil, "host:9000", tasks, tasks[1:], false))
	if err != nil || addr != "host:9000" || fmt.Sprint(warm) != fmt.Sprint(tasks) || caught != nil {
		t.Fatalf("v2 member data: %q %v %v %v (caught is not sent)", addr, warm, caught, err)
	}
	addr, warm, caught, err = parseMemberData(appendMemberData(nil, "host:9000", tasks, tasks[1:], true))
	if err != nil || addr != "host:9000" || fmt.Sprint(warm) != fmt.Sprint(tasks) || fmt.Sprint(caught) != fmt.Sprint(tasks[1:]) {
		t.Fatalf("v3 member data: %q %v %v %v", addr, warm, caught, err)
	}
	// Version 1 member data (an older instance): tasks, no address.
	if addr, warm, _, err := parseMemberData(appendTasks(nil, tasks)); err != nil || addr != "" || fmt.Sprint(warm) != fmt.Sprint(tasks) {
		t.Fatalf("v1 member data: %q %v %v", addr, warm, err)
	}
	hosts := []hostTasks{{"a:1", tasks[:1], nil}, {"b:2", nil, tasks[1:]}}
	sb, wu, hs, err := parseAssignmentData(appendAssignmentData(nil, tasks[2:], tasks[:1], hosts, false))
	if err != nil || fmt.Sprint(sb) != fmt.Sprint(tasks[2:]) || wu != nil || fmt.Sprint(hs) != fmt.Sprint(hosts) {
		t.Fatalf("v2 assignment data: %v %v %v %v (warmups are not sent)", sb, wu, hs, err)
	}
	sb, wu, hs, err = parseAssignmentData(appendAssignmentData(nil, tasks[2:], tasks[:1], hosts, true))
	if err != nil || fmt.Sprint(sb) != fmt.Sprint(tasks[2:]) || fmt.Sprint(wu) != fmt.Sprint(tasks[:1]) || fmt.Sprint(hs) != fmt.Sprint(hosts) {
		t.Fatalf("v3 assignment data: %v %v %v %v", sb, wu, hs, err)
	}
	if sb, _, hs, err := parseAssignmentData(appendTasks(nil, tasks)); err != nil || fmt.Sprint(sb) != fmt.Sprint(tasks) || hs != nil {
		t.Fatalf("v1 assignment data: %v %v %v", sb, hs, err)
	}
	for _, v3 := range []bool{false, true} {
		good := appendAssignmentData(nil, tasks, tasks[:1], hosts, v3)
		for _, bad := range [][]byte{{4}, good[:len(good)-1], append(slices.Clone(good), 0), {2, 5}, {2, 0, 1, 9, 'x'}, {3, 0, 5}} {
			if _, _, _, err := parseAssignmentData(bad); err == nil {
				t.Errorf("parseAssignmentData(%x): no error", bad)
			}
		}
	}
	good := appendMemberData(nil, "h:1", tasks, tasks, true)
	for _, bad := range [][]byte{{9}, {2, 4, 'a'}, {3, 1, 'h', 5}, good[:len(good)-1], append(slices.Clone(good), 0)} {
		if _, _, _, err := parseMemberData(bad); err == nil {
			t.Errorf("parseMemberData(%x): no error", bad)
		}
	}
}

// TestBalancerHoldsTasksForWarmups: a member joins a group whose one member
// runs all six stateful tasks. The balance would move three; with two
// warmups, they stay, two of them with a warmup on the new member, and the
// stateless tasks balance as before. Once the new member advertises a
// warmup caught up, its task moves (revoked in this round); a task it holds
// a caught-up standby of moves at once too.
func TestBalancerHoldsTasksForWarmups(t *testing.T) {
	b := &balancer{groups: [][]string{{"a"}, {"r"}}, stateful: []bool{false, true}, warmups: 2}
	topics := map[string]int32{"a": 6, "r": 6}
	join := func(id string, owned map[string][]int32, warm, caught []taskKey) kmsg.JoinGroupResponseMember {
		mb := &balancer{groups: b.groups, warmups: 2}
		mb.warm.Store(&warm)
		mb.caught.Store(&caught)
		return member(mb, id, 4, owned)
	}
	all := []int32{0, 1, 2, 3, 4, 5}
	members := []kmsg.JoinGroupResponseMember{
		join("old", map[string][]int32{"a": all, "r": all}, nil, nil),
		join("new", nil, nil, nil),
	}
	parts, standbys, _ := syncAssignments(t, b, members, topics)
	warmups := syncWarmups(t, b, members, topics)
	if len(parts["new"]["r"]) != 0 || len(parts["old"]["r"]) != 6 {
		t.Fatalf("stateful tasks moved before any warmup caught up: %v", parts)
	}
	if len(parts["old"]["a"]) != 3 {
		t.Errorf("stateless tasks: %v, want 3 revoked from old", parts)
	}
	if len(warmups["new"]) != 2 || len(warmups["old"]) != 0 {
		t.Fatalf("warmups %v, want 2 on new", warmups)
	}
	for _, k := range warmups["new"] {
		if !slices.Contains(standbys["new"], k) {
			t.Errorf("warmup %v is not in new's standbys %v", k, standbys["new"])
		}
	}

	// The first warmup caught up; new also holds a caught-up copy of a
	// third task the balance moves (its standby, say).
	w := warmups["new"]
	third := taskKey{1, 5}
	for _, k := range []taskKey{{1, 3}, {1, 4}, {1, 5}} { // the tasks the balance moves
		if !slices.Contains(w, k) {
			third = k
		}
	}
	if slices.Contains(w, third) {
		t.Fatalf("warmups %v, want two of 1_3, 1_4, 1_5", w)
	}
	members = []kmsg.JoinGroupResponseMember{
		join("old", map[string][]int32{"a": parts["old"]["a"], "r": all}, nil, nil),
		join("new", map[string][]int32{"a": parts["new"]["a"]}, append(slices.Clone(w), third), []taskKey{w[0], third}),
	}
	parts, standbys, _ = syncAssignments(t, b, members, topics)
	warmups = syncWarmups(t, b, members, topics)
	// Cooperative: old gives up the caught-up tasks now; new gets them in
	// the next round, and holds their standbys meanwhile.
	for _, k := range []taskKey{w[0], third} {
		if slices.Contains(parts["old"]["r"], k.p) {
			t.Errorf("task %v, caught up on new, stays on old: %v", k, parts)
		}
		if !slices.Contains(standbys["new"], k) {
			t.Errorf("task %v moving to new is not among its standbys %v meanwhile", k, standbys["new"])
		}
	}
	if !slices.Contains(parts["old"]["r"], w[1].p) || !slices.Contains(warmups["new"], w[1]) {
		t.Errorf("task %v, still warming up, moved or lost its warmup: %v, warmups %v", w[1], parts, warmups)
	}
}

// syncWarmups returns the warmups of each member's assignment.
func syncWarmups(t *testing.T, b *balancer, members []kmsg.JoinGroupResponseMember, topics map[string]int32) map[string][]taskKey {
	t.Helper()
	into := balanceInto(t, b, members, topics)
	out := map[string][]taskKey{}
	for _, a := range into.IntoSyncAssignment() {
		recv := &balancer{groups: b.groups}
		if _, err := recv.ParseSyncAssignment(a.MemberAssignment); err != nil {
			t.Fatal(err)
		}
		out[a.MemberID] = *recv.warming.Load()
	}
	return out
}

// TestBalancerGivesUpTasksHeldElsewhere: an owner with more than its share
// gives up the tasks another member holds state of (here local state of
// tasks 0 and 1, which the owner would otherwise keep, being first), and
// keeps the others.
func TestBalancerGivesUpTasksHeldElsewhere(t *testing.T) {
	b := &balancer{groups: [][]string{{"r"}}, stateful: []bool{true}}
	topics := map[string]int32{"r": 4}
	back := &balancer{groups: b.groups}
	back.local.Store(&[]taskKey{{0, 0}, {0, 1}})
	members := []kmsg.JoinGroupResponseMember{
		member(&balancer{groups: b.groups}, "m0", 2, map[string][]int32{"r": {0, 1, 2, 3}}),
		member(back, "m1", 2, nil),
	}
	plan := balance(t, b, members, topics)
	if got := plan["m0"]["r"]; !slices.Equal(got, []int32{2, 3}) {
		t.Errorf("the owner keeps tasks %v, want 2 and 3 (it gives up 0 and 1, whose state m1 holds)", got)
	}
	// Next round, m0 owning 2 and 3: m1 gets 0 and 1.
	members[0] = member(&balancer{groups: b.groups}, "m0", 3, map[string][]int32{"r": {2, 3}})
	members[1] = member(back, "m1", 3, nil)
	plan = balance(t, b, members, topics)
	if got := plan["m1"]["r"]; !slices.Equal(got, []int32{0, 1}) {
		t.Errorf("m1 gets tasks %v, want 0 and 1", got)
	}
}
