package kstream_test

// Differential tests against Apache Kafka Streams (DESIGN.md, section 8).
//
// Each scenario testdata/scenarios/NAME.json names a topology and lists input
// records. The topology exists twice, under the same name: in Kafka Streams'
// DSL (internal/javaref/src/main/java/dev/kstream/javaref/Topologies.java)
// and in kstream (diffTopologies below). The Java program
// dev.kstream.javaref.Scenarios runs every scenario through Kafka Streams'
// TopologyTestDriver and records the output in NAME.expected.json;
// scripts/test.sh regenerates the recordings when java and mvn are present
// and fails if they changed. This test runs the scenarios through kstest and
// compares its output with the recordings, record by record: key, value,
// timestamp, and order (the whole order with one partition; the order per
// key with several). No Java is needed to run it.
//
// A scenario where kstream deliberately differs from Kafka Streams says why in
// "known_difference", and NAME.kstream.json holds kstream's output: the test
// then checks that kstream gives exactly that output, and that it still
// differs from the recording, so that any change in either shows. Rewrite the
// .kstream.json files with
//
//	go test -run TestDifferential . -update-kstream
//
// A scenario whose Go topology cannot be written yet says why in "pending",
// and is skipped (visibly). See testdata/scenarios/README.md.

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
)

var diffUpdateKstream = flag.Bool("update-kstream", false,
	"rewrite testdata/scenarios/*.kstream.json (kstream's output for scenarios marked known_difference)")

const diffDir = "testdata/scenarios"

// diffScenario is a scenario file.
type diffScenario struct {
	Topology        string         `json:"topology"`
	Comment         string         `json:"comment"`
	Partitions      int            `json:"partitions"`
	KnownDifference string         `json:"known_difference"`
	Pending         string         `json:"pending"`
	Inputs          []diffInputRec `json:"inputs"`
}

type diffInputRec struct {
	Topic string          `json:"topic"`
	Key   *string         `json:"key"`
	Value json.RawMessage `json:"value"`
	TS    *int64          `json:"ts"`
}

// diffRecording is a NAME.expected.json (or NAME.kstream.json) file.
type diffRecording struct {
	Topology     string                       `json:"topology"`
	KafkaStreams string                       `json:"kafka_streams,omitempty"`
	Outputs      map[string][]json.RawMessage `json:"outputs"`
}

// diffOut is one output record rendered as a line of a recording, e.g.
// {"key": "a", "value": 1, "ts": 10}; two records are equal when their lines
// are.
type diffOut struct {
	key  *string // nil: Kafka's null key
	line string
}

// diffOutputs maps each output topic to its records in order.
type diffOutputs map[string][]diffOut

func diffLine(key *string, value string, ts int64) string {
	k := "null"
	if key != nil {
		k = diffQuote(*key)
	}
	return fmt.Sprintf(`{"key": %s, "value": %s, "ts": %d}`, k, value, ts)
}

func diffQuote(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic(err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// diffValueType is a topic's value type: string or long (int64).
type diffValueType int

const (
	diffString diffValueType = iota
	diffLong
)

// diffTopology is the kstream twin of a topology of Topologies.java.
type diffTopology struct {
	in, out string // "topic:type,...", type string or long
	build   func(b *kstream.Builder)
}

func diffTopics(spec string) map[string]diffValueType {
	m := map[string]diffValueType{}
	for _, part := range strings.Split(spec, ",") {
		topic, typ, _ := strings.Cut(strings.TrimSpace(part), ":")
		switch typ {
		case "string":
			m[topic] = diffString
		case "long":
			m[topic] = diffLong
		default:
			panic("differential_test: bad topic spec " + spec)
		}
	}
	return m
}

func TestDifferential(t *testing.T) {
	entries, err := os.ReadDir(diffDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	files := map[string]bool{}
	for _, e := range entries {
		n := e.Name()
		files[n] = true
		if strings.HasSuffix(n, ".json") && !strings.HasSuffix(n, ".expected.json") && !strings.HasSuffix(n, ".kstream.json") {
			names = append(names, strings.TrimSuffix(n, ".json"))
		}
	}
	if len(names) == 0 {
		t.Fatalf("no scenarios in %s", diffDir)
	}
	used := map[string]bool{}
	for _, name := range names {
		sc, err := diffLoadScenario(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		used[sc.Topology] = true
		t.Run(name, func(t *testing.T) { diffRun(t, name, sc) })
	}
	// Leftovers are errors too: recordings without a scenario, and Go
	// topologies no scenario uses.
	for n := range files {
		for _, suf := range []string{".expected.json", ".kstream.json"} {
			if base, ok := strings.CutSuffix(n, suf); ok && !slices.Contains(names, base) {
				t.Errorf("%s/%s: no scenario %s.json (delete it)", diffDir, n, base)
			}
		}
	}
	for name := range diffTopologies {
		if !used[name] {
			t.Errorf("topology %s is used by no scenario", name)
		}
	}
}

func diffLoadScenario(name string) (*diffScenario, error) {
	b, err := os.ReadFile(filepath.Join(diffDir, name+".json"))
	if err != nil {
		return nil, err
	}
	var sc diffScenario
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return nil, fmt.Errorf("parsing %s.json: %w", name, err)
	}
	if sc.Topology == "" {
		return nil, fmt.Errorf("%s.json: no topology", name)
	}
	if sc.Partitions == 0 {
		sc.Partitions = 1
	}
	return &sc, nil
}

func diffRun(t *testing.T, name string, sc *diffScenario) {
	if sc.Pending != "" {
		// A scenario waiting for kstream code fails until it is enabled:
		// nothing is skipped silently.
		t.Fatalf("scenario %s is marked pending (%s): implement what it needs and remove the mark", name, sc.Pending)
	}
	topo, ok := diffTopologies[sc.Topology]
	if !ok {
		t.Fatalf("topology %q is not registered on the Go side (diffTopologies in differential_test.go); mark the scenario \"pending\" with the reason if it cannot be yet", sc.Topology)
	}
	recordedFor, expected, err := diffLoadRecording(filepath.Join(diffDir, name+".expected.json"))
	if err != nil {
		t.Fatalf("%v\n(record it with Kafka Streams: see testdata/scenarios/README.md)", err)
	}
	if recordedFor != sc.Topology {
		t.Fatalf("%s.expected.json was recorded for topology %q, the scenario names %q: re-record it", name, recordedFor, sc.Topology)
	}
	got := diffExecute(t, topo, sc, 1)

	want, wantFile := expected, name+".expected.json"
	if sc.KnownDifference != "" {
		ksPath := filepath.Join(diffDir, name+".kstream.json")
		if *diffUpdateKstream {
			diffWriteRecording(t, ksPath, sc.Topology, got)
		}
		_, ks, err := diffLoadRecording(ksPath)
		if err != nil {
			t.Fatalf("%v\n(a scenario marked known_difference needs kstream's output in %s.kstream.json: go test -run TestDifferential . -update-kstream)", err, name)
		}
		if diffEqual(got, expected, false) {
			t.Errorf("kstream now gives exactly Kafka Streams' output for this scenario, marked known_difference (%s):\nremove the mark and %s.kstream.json", sc.KnownDifference, name)
		}
		want, wantFile = ks, name+".kstream.json"
	} else if ksPath := filepath.Join(diffDir, name+".kstream.json"); *diffUpdateKstream {
		_ = os.Remove(ksPath)
	} else if _, err := os.Stat(ksPath); err == nil {
		t.Errorf("%s.kstream.json exists but the scenario is not marked known_difference: delete it (or run -update-kstream)", name)
	}
	if !diffEqual(got, want, false) {
		t.Errorf("kstream (1 partition) differs from %s:\n%s%s", wantFile, diffReport(got, want, false), diffContext(sc))
	}
	if sc.Partitions > 1 {
		gotN := diffExecute(t, topo, sc, sc.Partitions)
		if !diffEqual(gotN, want, true) {
			t.Errorf("kstream (%d partitions) differs from %s in the order per key:\n%s%s", sc.Partitions, wantFile, diffReport(gotN, want, true), diffContext(sc))
		}
	}
}

func diffContext(sc *diffScenario) string {
	s := ""
	if sc.Comment != "" {
		s += "scenario: " + sc.Comment + "\n"
	}
	if sc.KnownDifference != "" {
		s += "known difference from Kafka Streams: " + sc.KnownDifference + "\n"
	}
	return s
}

// diffLoadRecording reads a recording: the topology it was made with and
// its records.
func diffLoadRecording(path string) (string, diffOutputs, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	var rec diffRecording
	if err := json.Unmarshal(b, &rec); err != nil {
		return "", nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	out := diffOutputs{}
	for topic, rs := range rec.Outputs {
		out[topic] = []diffOut{}
		for i, raw := range rs {
			var r struct {
				Key   *string         `json:"key"`
				Value json.RawMessage `json:"value"`
				TS    *int64          `json:"ts"`
			}
			if err := json.Unmarshal(raw, &r); err != nil || r.TS == nil || len(r.Value) == 0 {
				return "", nil, fmt.Errorf("%s: %s record %d: want {\"key\", \"value\", \"ts\"}, got %s", path, topic, i, raw)
			}
			var v any
			d := json.NewDecoder(bytes.NewReader(r.Value))
			d.UseNumber()
			if err := d.Decode(&v); err != nil {
				return "", nil, fmt.Errorf("%s: %s record %d: %w", path, topic, i, err)
			}
			var value string
			switch v := v.(type) {
			case nil:
				value = "null"
			case string:
				value = diffQuote(v)
			case json.Number:
				n, err := v.Int64()
				if err != nil {
					return "", nil, fmt.Errorf("%s: %s record %d: value %s is not a long", path, topic, i, v)
				}
				value = strconv.FormatInt(n, 10)
			default:
				return "", nil, fmt.Errorf("%s: %s record %d: value %s is neither a string, a long nor null", path, topic, i, r.Value)
			}
			out[topic] = append(out[topic], diffOut{key: r.Key, line: diffLine(r.Key, value, *r.TS)})
		}
	}
	return rec.Topology, out, nil
}

// diffWriteRecording writes outputs in the layout of the Java program's
// recordings.
func diffWriteRecording(t *testing.T, path, topology string, outs diffOutputs) {
	t.Helper()
	var sb strings.Builder
	fmt.Fprintf(&sb, "{\n  \"topology\": %s,\n  \"outputs\": {", diffQuote(topology))
	topics := diffSortedTopics(outs)
	for i, topic := range topics {
		fmt.Fprintf(&sb, "\n    %s: [", diffQuote(topic))
		for j, r := range outs[topic] {
			if j == 0 {
				sb.WriteString("\n      ")
			} else {
				sb.WriteString(",\n      ")
			}
			sb.WriteString(r.line)
		}
		if len(outs[topic]) > 0 {
			sb.WriteString("\n    ")
		}
		sb.WriteString("]")
		if i < len(topics)-1 {
			sb.WriteString(",")
		}
	}
	if len(topics) > 0 {
		sb.WriteString("\n  ")
	}
	sb.WriteString("}\n}\n")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}

func diffSortedTopics(outs ...diffOutputs) []string {
	var topics []string
	for _, o := range outs {
		for topic := range o {
			if !slices.Contains(topics, topic) {
				topics = append(topics, topic)
			}
		}
	}
	slices.Sort(topics)
	return topics
}

// diffByKey splits a topic's records per key, keeping their order.
func diffByKey(rs []diffOut) map[string][]string {
	m := map[string][]string{}
	for _, r := range rs {
		k := "null"
		if r.key != nil {
			k = diffQuote(*r.key)
		}
		m[k] = append(m[k], r.line)
	}
	return m
}

func diffLines(rs []diffOut) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.line
	}
	return out
}

func diffEqual(got, want diffOutputs, perKey bool) bool {
	for _, topic := range diffSortedTopics(got, want) {
		g, gok := got[topic]
		w, wok := want[topic]
		if gok != wok {
			return false
		}
		if !perKey {
			if !slices.Equal(diffLines(g), diffLines(w)) {
				return false
			}
			continue
		}
		gk, wk := diffByKey(g), diffByKey(w)
		if len(gk) != len(wk) {
			return false
		}
		for k, gl := range gk {
			if !slices.Equal(gl, wk[k]) {
				return false
			}
		}
	}
	return true
}

// diffReport shows, per topic, a line diff of the records: "-" only in the
// expected output, "+" only in kstream's.
func diffReport(got, want diffOutputs, perKey bool) string {
	var sb strings.Builder
	for _, topic := range diffSortedTopics(got, want) {
		g, gok := got[topic]
		w, wok := want[topic]
		switch {
		case !wok:
			fmt.Fprintf(&sb, "topic %s: written by kstream, not in the expected output\n", topic)
			continue
		case !gok:
			fmt.Fprintf(&sb, "topic %s: in the expected output, not declared on the Go side\n", topic)
			continue
		}
		if !perKey {
			if !slices.Equal(diffLines(g), diffLines(w)) {
				fmt.Fprintf(&sb, "topic %s (- expected, + kstream):\n%s", topic, diffLineDiff(diffLines(w), diffLines(g)))
			}
			continue
		}
		gk, wk := diffByKey(g), diffByKey(w)
		var keys []string
		for k := range gk {
			keys = append(keys, k)
		}
		for k := range wk {
			if _, ok := gk[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			if !slices.Equal(gk[k], wk[k]) {
				fmt.Fprintf(&sb, "topic %s, key %s (- expected, + kstream):\n%s", topic, k, diffLineDiff(wk[k], gk[k]))
			}
		}
	}
	return sb.String()
}

// diffLineDiff is a longest-common-subsequence line diff.
func diffLineDiff(a, b []string) string {
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			fmt.Fprintf(&sb, "      %s\n", a[i])
			i++
			j++
		case i < len(a) && (j == len(b) || lcs[i+1][j] >= lcs[i][j+1]):
			fmt.Fprintf(&sb, "    - %s\n", a[i])
			i++
		default:
			fmt.Fprintf(&sb, "    + %s\n", b[j])
			j++
		}
	}
	return sb.String()
}

// diffNullableString is a serde of *string for reading output topics: a
// Kafka null key is never decoded, so it stays a nil pointer, unlike the
// empty string.
type diffNullableString struct{}

func (diffNullableString) Append(dst []byte, v *string) ([]byte, error) {
	if v == nil {
		return dst, fmt.Errorf("differential_test: cannot encode a null key")
	}
	return append(dst, *v...), nil
}

func (diffNullableString) Decode(b []byte) (*string, error) {
	s := string(b)
	return &s, nil
}

// diffExecute runs the scenario's inputs through the Go topology on kstest
// with the given number of partitions, and returns the records of every
// output topic the topology declares.
func diffExecute(t *testing.T, topo diffTopology, sc *diffScenario, partitions int) diffOutputs {
	t.Helper()
	ins, outs := diffTopics(topo.in), diffTopics(topo.out)
	b := kstream.NewBuilder()
	topo.build(b)
	built, err := b.Build()
	if err != nil {
		t.Fatalf("building topology %s: %v", sc.Topology, err)
	}
	d := kstest.NewDriver(t, built, kstest.Partitions(partitions))
	strIns := map[string]*kstest.InputTopic[string, string]{}
	longIns := map[string]*kstest.InputTopic[string, int64]{}
	for topic, typ := range ins {
		if typ == diffLong {
			longIns[topic] = kstest.Input(d, topic, serde.String, serde.Int64)
		} else {
			strIns[topic] = kstest.Input(d, topic, serde.String, serde.String)
		}
	}
	for i, in := range sc.Inputs {
		where := fmt.Sprintf("input %d (%s)", i, in.Topic)
		typ, ok := ins[in.Topic]
		if !ok {
			t.Fatalf("%s: topology %s reads no topic %q", where, sc.Topology, in.Topic)
		}
		if in.TS == nil {
			t.Fatalf("%s: no ts", where)
		}
		ts := *in.TS
		var v any
		dec := json.NewDecoder(bytes.NewReader(in.Value))
		dec.UseNumber()
		if len(in.Value) == 0 || dec.Decode(&v) != nil {
			t.Fatalf("%s: no value (null for a tombstone)", where)
		}
		if v == nil {
			if in.Key == nil {
				t.Fatalf("%s: a record with a null key and a null value", where)
			}
			if typ == diffLong {
				longIns[in.Topic].PipeTombstoneAt(ts, *in.Key)
			} else {
				strIns[in.Topic].PipeTombstoneAt(ts, *in.Key)
			}
			continue
		}
		switch typ {
		case diffLong:
			num, ok := v.(json.Number)
			n, err := num.Int64()
			if !ok || err != nil {
				t.Fatalf("%s: the topic's values are longs, got %s", where, in.Value)
			}
			if in.Key == nil {
				longIns[in.Topic].PipeNullKeyAt(ts, n)
			} else {
				longIns[in.Topic].PipeAt(ts, *in.Key, n)
			}
		default:
			s, ok := v.(string)
			if !ok {
				t.Fatalf("%s: the topic's values are strings, got %s", where, in.Value)
			}
			if in.Key == nil {
				strIns[in.Topic].PipeNullKeyAt(ts, s)
			} else {
				strIns[in.Topic].PipeAt(ts, *in.Key, s)
			}
		}
	}
	got := diffOutputs{}
	for topic, typ := range outs {
		got[topic] = []diffOut{}
		if typ == diffLong {
			for _, r := range kstest.Output(d, topic, diffNullableString{}, serde.Int64).Records() {
				v := "null"
				if !r.Tombstone {
					v = strconv.FormatInt(r.Value, 10)
				}
				got[topic] = append(got[topic], diffOut{key: r.Key, line: diffLine(r.Key, v, r.Timestamp)})
			}
		} else {
			for _, r := range kstest.Output(d, topic, diffNullableString{}, serde.String).Records() {
				v := "null"
				if !r.Tombstone {
					v = diffQuote(r.Value)
				}
				got[topic] = append(got[topic], diffOut{key: r.Key, line: diffLine(r.Key, v, r.Timestamp)})
			}
		}
	}
	// Every topic written outside the application's internal ones must be
	// declared (an input topic written back is fine).
	for _, topic := range d.Topics() {
		_, in := ins[topic]
		_, out := outs[topic]
		if !in && !out && !strings.HasPrefix(topic, "kstest-") {
			t.Errorf("the topology wrote to the undeclared topic %s", topic)
		}
	}
	return got
}

// ---------------------------------------------------------------------------
// The topologies: twins of Topologies.java, in the same order. Conventions:
// joiners give "left+right" with "null" for a missing side; reducers
// concatenate with ","; windowed results are re-keyed "key@start/end".

var (
	dS = serde.String
	dL = serde.Int64
)

func dJoin(_ string, v, vo string) string { return v + "+" + vo }

func dLeftJoin(_ string, v, vo string, ok bool) string {
	if !ok {
		vo = "null"
	}
	return v + "+" + vo
}

func dOuterJoin(_ string, v string, vOK bool, vo string, voOK bool) string {
	if !vOK {
		v = "null"
	}
	if !voOK {
		vo = "null"
	}
	return v + "+" + vo
}

func dConcat(a, v string) string { return a + "," + v }

func dWords(v string) []string { return strings.Fields(v) }

// dFirst is the first letter of a value.
func dFirst(v string) string { return v[:1] }

// dFK is the foreign key of a "fk:payload" value; "-" and "" mean none.
func dFK(v string) (string, bool) {
	f, _, _ := strings.Cut(v, ":")
	if f == "" || f == "-" {
		return "", false
	}
	return f, true
}

func dHasPrefix(p string) func(string, string) bool {
	return func(_ string, v string) bool { return strings.HasPrefix(v, p) }
}

func dIn(b *kstream.Builder, topic string) kstream.Stream[string, string] {
	return kstream.Source(b, topic, dS, dS)
}

func dTable(b *kstream.Builder, topic, store string) kstream.Table[string, string] {
	return kstream.SourceTable(b, topic, dS, dS, kstream.Named(store))
}

// dWindowKey re-keys windowed records "key@start/end", tombstones included
// (Map would drop them).
type dWindowKey[V any] struct {
	ctx *kstream.ProcessorContext[string, V]
}

func (p *dWindowKey[V]) Init(ctx *kstream.ProcessorContext[string, V]) error {
	p.ctx = ctx
	return nil
}

func (p *dWindowKey[V]) Process(r kstream.Record[kstream.Windowed[string], V]) error {
	p.ctx.Forward(kstream.Record[string, V]{
		Key:   fmt.Sprintf("%s@%d/%d", r.Key.Key, r.Key.Start, r.Key.End),
		Value: r.Value, Timestamp: r.Timestamp, Headers: r.Headers, Tombstone: r.Tombstone,
	})
	return nil
}

func (p *dWindowKey[V]) Close() error { return nil }

func dWindowedOut[V any](t kstream.Table[kstream.Windowed[string], V], topic string, vs serde.Serde[V]) {
	kstream.Process(t.ToStream(), func() kstream.Processor[kstream.Windowed[string], V, string, V] {
		return &dWindowKey[V]{}
	}).To(topic, dS, vs)
}

const dMs = time.Millisecond

var diffTopologies = map[string]diffTopology{
	// ------------------------------------------------------------ stateless

	"stream-filter": {"in:string", "out:string", func(b *kstream.Builder) {
		dIn(b, "in").Filter(dHasPrefix("a")).To("out", dS, dS)
	}},
	"stream-branch": {"in:string", "out-a:string,out-b:string,out-rest:string", func(b *kstream.Builder) {
		br := dIn(b, "in").Branch(dHasPrefix("a"), dHasPrefix("b"))
		br[0].To("out-a", dS, dS)
		br[1].To("out-b", dS, dS)
		br[2].To("out-rest", dS, dS)
	}},
	"stream-map-values": {"in:string", "out:string", func(b *kstream.Builder) {
		kstream.MapValues(dIn(b, "in"), strings.ToUpper).To("out", dS, dS)
	}},
	"stream-flat-map-values": {"in:string", "out:string", func(b *kstream.Builder) {
		kstream.FlatMapValues(dIn(b, "in"), func(v string, emit func(string)) {
			for _, w := range dWords(v) {
				emit(w)
			}
		}).To("out", dS, dS)
	}},
	"stream-select-key": {"in:string", "out:string", func(b *kstream.Builder) {
		kstream.SelectKey(dIn(b, "in"), func(k, _ string) string { return k + "!" }).To("out", dS, dS)
	}},
	"stream-map": {"in:string", "out:string", func(b *kstream.Builder) {
		kstream.Map(dIn(b, "in"), func(k, v string) (string, string) { return strings.ToUpper(k), v + "!" }).To("out", dS, dS)
	}},
	"stream-flat-map": {"in:string", "out:string", func(b *kstream.Builder) {
		kstream.FlatMap(dIn(b, "in"), func(k, v string, emit func(string, string)) {
			for _, w := range dWords(v) {
				emit(w, k)
			}
		}).To("out", dS, dS)
	}},
	"stream-merge": {"left:string,right:string", "out:string", func(b *kstream.Builder) {
		dIn(b, "left").Merge(dIn(b, "right")).To("out", dS, dS)
	}},

	// --------------------------------------------------------- aggregations

	"agg-count": {"in:string", "out:long", func(b *kstream.Builder) {
		dIn(b, "in").GroupByKey().Count(kstream.Named("counts")).ToStream().To("out", dS, dL)
	}},
	"agg-reduce": {"in:string", "out:string", func(b *kstream.Builder) {
		dIn(b, "in").GroupByKey().Reduce(dConcat, kstream.Named("reduced")).ToStream().To("out", dS, dS)
	}},
	"agg-aggregate-sum": {"in:long", "out:long", func(b *kstream.Builder) {
		g := kstream.Source(b, "in", dS, dL).GroupByKey()
		kstream.Aggregate(g, func() int64 { return 0 }, func(_ string, v, a int64) int64 { return a + v }, dL,
			kstream.Named("sums")).ToStream().To("out", dS, dL)
	}},
	"agg-group-by-count": {"in:string", "out:long", func(b *kstream.Builder) {
		kstream.GroupBy(dIn(b, "in"), func(_, v string) string { return dFirst(v) }, dS, kstream.Named("by-letter")).
			Count(kstream.Named("letter-counts")).ToStream().To("out", dS, dL)
	}},
	"agg-select-key-count": {"in:string", "out:long", func(b *kstream.Builder) {
		kstream.SelectKey(dIn(b, "in"), func(k, _ string) string { return strings.ToUpper(k) }).
			GroupByKey(kstream.Named("upper")).Count(kstream.Named("upper-counts")).ToStream().To("out", dS, dL)
	}},
	"agg-map-reduce-sum": {"in:string", "out:long", func(b *kstream.Builder) {
		kstream.Map(dIn(b, "in"), func(_, v string) (string, int64) { return v, 1 }).
			GroupByKey(kstream.Named("words")).Reduce(func(a, v int64) int64 { return a + v }, kstream.Named("word-sums")).
			ToStream().To("out", dS, dL)
	}},
	"agg-shared-grouping": {"in:string", "out-count:long,out-reduce:string", func(b *kstream.Builder) {
		g := kstream.GroupBy(dIn(b, "in"), func(_, v string) string { return dFirst(v) }, dS, kstream.Named("g"))
		g.Count(kstream.Named("g-count")).ToStream().To("out-count", dS, dL)
		g.Reduce(dConcat, kstream.Named("g-reduce")).ToStream().To("out-reduce", dS, dS)
	}},

	"proc-values-count": {"in:string", "out:string,counts:long", func(b *kstream.Builder) {
		s := kstream.ProcessValues(dIn(b, "in"), func() kstream.FixedKeyProcessor[string, string, string] {
			return &dUpper{}
		})
		s.To("out", dS, dS)
		s.GroupByKey(kstream.Named("pv")).Count(kstream.Named("pv-counts")).ToStream().To("counts", dS, dL)
	}},
	"sink-func": {"in:string", "out-a:string,out-b:string", func(b *kstream.Builder) {
		dIn(b, "in").ToFunc(func(r kstream.Record[string, string]) string {
			if !r.Tombstone && strings.HasPrefix(r.Value, "a") {
				return "out-a"
			}
			return "out-b"
		}, dS, dS)
	}},

	// --------------------------------------------------------------- tables

	"table-source": {"in:string", "out:string", func(b *kstream.Builder) {
		dTable(b, "in", "t").ToStream().To("out", dS, dS)
	}},
	"table-to-table": {"in:string", "out:string", func(b *kstream.Builder) {
		dIn(b, "in").ToTable(kstream.Named("tt")).ToStream().To("out", dS, dS)
	}},
	"table-filter": {"in:string", "out:string", func(b *kstream.Builder) {
		dTable(b, "in", "t").Filter(dHasPrefix("a")).ToStream().To("out", dS, dS)
	}},
	"table-map-values": {"in:string", "out:string", func(b *kstream.Builder) {
		kstream.MapTableValues(dTable(b, "in", "t"), func(_, v string) string { return strings.ToUpper(v) }, dS).
			ToStream().To("out", dS, dS)
	}},
	"table-group-by-count": {"in:string", "out:long", func(b *kstream.Builder) {
		kstream.GroupTableBy(dTable(b, "in", "t"), func(k, v string) (string, string) { return v, k }, dS, dS, kstream.Named("regroup")).
			Count(kstream.Named("group-counts")).ToStream().To("out", dS, dL)
	}},
	"table-group-by-reduce": {"in:long", "out:long", func(b *kstream.Builder) {
		t := kstream.SourceTable(b, "in", dS, dL, kstream.Named("t"))
		kstream.GroupTableBy(t, func(k string, v int64) (string, int64) { return k[:1], v }, dS, dL, kstream.Named("regroup")).
			Reduce(func(a, v int64) int64 { return a + v }, func(a, v int64) int64 { return a - v }, kstream.Named("group-sums")).
			ToStream().To("out", dS, dL)
	}},
	"table-group-by-aggregate": {"in:string", "out:string", func(b *kstream.Builder) {
		gt := kstream.GroupTableBy(dTable(b, "in", "t"), func(k, v string) (string, string) { return dFirst(v), k + "=" + v }, dS, dS, kstream.Named("regroup"))
		kstream.AggregateTable(gt, func() string { return "" },
			func(_, v, a string) string { return a + "+" + v },
			func(_, v, a string) string { return a + "-" + v }, dS, kstream.Named("group-aggs")).
			ToStream().To("out", dS, dS)
	}},

	"table-regroup-chain": {"in:string", "out-counts:long,out:long", func(b *kstream.Builder) {
		counts := kstream.GroupTableBy(dTable(b, "in", "t"), func(k, v string) (string, string) { return v, k }, dS, dS, kstream.Named("regroup")).
			Count(kstream.Named("group-counts"))
		counts.ToStream().To("out-counts", dS, dL)
		kstream.GroupTableBy(counts, func(_ string, v int64) (string, int64) { return "total", v }, dS, dL, kstream.Named("total")).
			Reduce(func(a, v int64) int64 { return a + v }, func(a, v int64) int64 { return a - v }, kstream.Named("totals")).
			ToStream().To("out", dS, dL)
	}},

	// ---------------------------------------------------- table-table joins

	"tt-join": {"left:string,right:string", "out:string", func(b *kstream.Builder) {
		kstream.JoinTables(dTable(b, "left", "lt"), dTable(b, "right", "rt"), dJoin, dS, kstream.Named("j")).
			ToStream().To("out", dS, dS)
	}},
	"tt-left-join": {"left:string,right:string", "out:string", func(b *kstream.Builder) {
		kstream.LeftJoinTables(dTable(b, "left", "lt"), dTable(b, "right", "rt"), dLeftJoin, dS, kstream.Named("j")).
			ToStream().To("out", dS, dS)
	}},
	"tt-outer-join": {"left:string,right:string", "out:string", func(b *kstream.Builder) {
		kstream.OuterJoinTables(dTable(b, "left", "lt"), dTable(b, "right", "rt"), dOuterJoin, dS, kstream.Named("j")).
			ToStream().To("out", dS, dS)
	}},
	"tt-join-filtered": {"left:string,right:string", "out:string", func(b *kstream.Builder) {
		l := dTable(b, "left", "lt").Filter(func(_, v string) bool { return !strings.HasPrefix(v, "x") })
		kstream.JoinTables(l, dTable(b, "right", "rt"), dJoin, dS, kstream.Named("j")).ToStream().To("out", dS, dS)
	}},
	"tt-join-group-by-count": {"left:string,right:string", "out:long", func(b *kstream.Builder) {
		j := kstream.JoinTables(dTable(b, "left", "lt"), dTable(b, "right", "rt"), dJoin, dS, kstream.Named("j"))
		kstream.GroupTableBy(j, func(k, v string) (string, string) { return v, k }, dS, dS, kstream.Named("regroup")).
			Count(kstream.Named("join-counts")).ToStream().To("out", dS, dL)
	}},
	"tt-fk-join": {"left:string,right:string", "out:string", func(b *kstream.Builder) {
		kstream.JoinTablesFK(dTable(b, "left", "lt"), dTable(b, "right", "rt"),
			func(_, v string) (string, bool) { return dFK(v) }, dJoin, dS, kstream.Named("fkj")).
			ToStream().To("out", dS, dS)
	}},
	"tt-fk-left-join": {"left:string,right:string", "out:string", func(b *kstream.Builder) {
		kstream.LeftJoinTablesFK(dTable(b, "left", "lt"), dTable(b, "right", "rt"),
			func(_, v string) (string, bool) { return dFK(v) }, dLeftJoin, dS, kstream.Named("fkj")).
			ToStream().To("out", dS, dS)
	}},

	// -------------------------------------------------------------- windows

	"win-tumbling-count": {"in:string", "out:long", func(b *kstream.Builder) {
		dWindowedOut(kstream.WindowedBy(dIn(b, "in").GroupByKey(), kstream.Tumbling(10*dMs)).
			Count(kstream.Named("wc")), "out", dL)
	}},
	"ts-extractor-window-count": {"in:string", "out:long", func(b *kstream.Builder) {
		s := kstream.Source(b, "in", dS, dS, kstream.TimestampFrom(func(_, v string, _ int64) int64 {
			n, _ := strconv.ParseInt(v[strings.IndexByte(v, '@')+1:], 10, 64)
			return n
		}))
		dWindowedOut(kstream.WindowedBy(s.GroupByKey(), kstream.Tumbling(10*dMs)).Count(kstream.Named("tc")), "out", dL)
	}},
	"win-tumbling-grace-reduce": {"in:string", "out:string", func(b *kstream.Builder) {
		dWindowedOut(kstream.WindowedBy(dIn(b, "in").GroupByKey(), kstream.Tumbling(10*dMs).Grace(5*dMs)).
			Reduce(dConcat, kstream.Named("wr")), "out", dS)
	}},
	"win-hopping-count": {"in:string", "out:long", func(b *kstream.Builder) {
		dWindowedOut(kstream.WindowedBy(dIn(b, "in").GroupByKey(), kstream.Hopping(10*dMs, 5*dMs).Grace(5*dMs)).
			Count(kstream.Named("wc")), "out", dL)
	}},
	"win-group-by-aggregate": {"in:string", "out:string", func(b *kstream.Builder) {
		g := kstream.GroupBy(dIn(b, "in"), func(_, v string) string { return dFirst(v) }, dS, kstream.Named("by-letter"))
		wg := kstream.WindowedBy(g, kstream.Tumbling(10*dMs).Grace(5*dMs))
		dWindowedOut(kstream.AggregateWindowed(wg, func() string { return "" },
			func(_, v, a string) string { return a + "+" + v }, dS, kstream.Named("wa")), "out", dS)
	}},
	"win-sliding-count": {"in:string", "out:long", func(b *kstream.Builder) {
		dWindowedOut(kstream.WindowedBy(dIn(b, "in").GroupByKey(), kstream.Sliding(10*dMs)).
			Count(kstream.Named("sc")), "out", dL)
	}},
	"win-sliding-grace-reduce": {"in:string", "out:string", func(b *kstream.Builder) {
		dWindowedOut(kstream.WindowedBy(dIn(b, "in").GroupByKey(), kstream.Sliding(10*dMs).Grace(5*dMs)).
			Reduce(dConcat, kstream.Named("sr")), "out", dS)
	}},
	"win-session-count": {"in:string", "out:long", func(b *kstream.Builder) {
		dWindowedOut(kstream.SessionWindowedBy(dIn(b, "in").GroupByKey(), 10*dMs).
			Count(kstream.Named("ssc")), "out", dL)
	}},
	"win-session-grace-reduce": {"in:string", "out:string", func(b *kstream.Builder) {
		dWindowedOut(kstream.SessionWindowedBy(dIn(b, "in").GroupByKey(), 10*dMs).Grace(5*dMs).
			Reduce(dConcat, kstream.Named("ssr")), "out", dS)
	}},
	"win-session-aggregate": {"in:string", "out:string", func(b *kstream.Builder) {
		sg := kstream.SessionWindowedBy(dIn(b, "in").GroupByKey(), 10*dMs).Grace(5 * dMs)
		dWindowedOut(kstream.AggregateSession(sg, func() string { return "" },
			func(_, v, a string) string { return a + "+" + v },
			func(_, a1, a2 string) string { return a1 + "|" + a2 }, dS, kstream.Named("ssa")), "out", dS)
	}},
	"win-tumbling-emit-close":           {"in:string", "out:long", dTumblingEmitClose},
	"win-tumbling-suppress":             {"in:string", "out:long", dTumblingEmitClose},
	"win-tumbling-emit-close-retention": {"in:string", "out:long", dTumblingEmitClose},
	"win-hopping-emit-close":            {"in:string", "out:long", dHoppingEmitClose},
	"win-hopping-emit-close-retention":  {"in:string", "out:long", dHoppingEmitClose},
	"win-sliding-emit-close": {"in:string", "out:string", func(b *kstream.Builder) {
		dWindowedOut(kstream.WindowedBy(dIn(b, "in").GroupByKey(), kstream.Sliding(10*dMs).Grace(5*dMs)).
			Reduce(dConcat, kstream.Named("sr"), kstream.EmitOnWindowClose()), "out", dS)
	}},
	"win-session-emit-close": {"in:string", "out:string", dSessionEmitClose},
	"win-session-suppress":   {"in:string", "out:string", dSessionEmitClose},

	// ------------------------------------------------------------- suppress

	"suppress-time-limit": {"in:string", "out:long", func(b *kstream.Builder) {
		dIn(b, "in").GroupByKey().Count(kstream.Named("counts")).
			Suppress(kstream.UntilTimeLimit(10*dMs), kstream.Named("sup")).ToStream().To("out", dS, dL)
	}},
	"suppress-time-limit-zero": {"in:string", "out:long", func(b *kstream.Builder) {
		dIn(b, "in").GroupByKey().Count(kstream.Named("counts")).
			Suppress(kstream.UntilTimeLimit(0), kstream.Named("sup")).ToStream().To("out", dS, dL)
	}},
	"suppress-time-limit-tombstone": {"in:string", "out:string", func(b *kstream.Builder) {
		dTable(b, "in", "t").Suppress(kstream.UntilTimeLimit(10*dMs), kstream.Named("sup")).ToStream().To("out", dS, dS)
	}},
	"suppress-time-limit-max-records": {"in:string", "out:long", func(b *kstream.Builder) {
		dIn(b, "in").GroupByKey().Count(kstream.Named("counts")).
			Suppress(kstream.UntilTimeLimit(10*dMs).MaxRecords(2).EmitEarlyWhenFull(), kstream.Named("sup")).
			ToStream().To("out", dS, dL)
	}},
	"suppress-windowed": {"in:string", "out:long", func(b *kstream.Builder) {
		dWindowedOut(kstream.WindowedBy(dIn(b, "in").GroupByKey(), kstream.Tumbling(10*dMs)).
			Count(kstream.Named("wc")).Suppress(kstream.UntilTimeLimit(5*dMs), kstream.Named("sup")), "out", dL)
	}},
	"suppress-regroup": {"in:string", "out-suppressed:string,out:long", func(b *kstream.Builder) {
		sup := dTable(b, "in", "t").Suppress(kstream.UntilTimeLimit(10*dMs), kstream.Named("sup"))
		sup.ToStream().To("out-suppressed", dS, dS)
		kstream.GroupTableBy(sup, func(k, v string) (string, string) { return v, k }, dS, dS, kstream.Named("regroup")).
			Count(kstream.Named("group-counts")).ToStream().To("out", dS, dL)
	}},

	// -------------------------------------------------------------- cogroup

	"cogroup-aggregate": {"left:string,right:long", "out:string", func(b *kstream.Builder) {
		kstream.AggregateCogrouped(dCogroupLong(b), func() string { return "" }, dS,
			kstream.Named("cg")).ToStream().To("out", dS, dS)
	}},
	"cogroup-repartition": {"left:string,right:string", "out:string", func(b *kstream.Builder) {
		right := kstream.GroupBy(dIn(b, "right"), func(_, v string) string { return dFirst(v) }, dS, kstream.Named("by-letter"))
		c := kstream.CogroupWith(kstream.Cogroup(dIn(b, "left").GroupByKey(), dAppend("+")), right, dAppend("#"))
		kstream.AggregateCogrouped(c, func() string { return "" }, dS, kstream.Named("cg")).ToStream().To("out", dS, dS)
	}},
	"cogroup-windowed": {"left:string,right:long", "out:string", func(b *kstream.Builder) {
		c := dCogroupLong(b)
		dWindowedOut(kstream.AggregateCogroupedWindowed(c, kstream.Tumbling(10*dMs).Grace(5*dMs), func() string { return "" }, dS,
			kstream.Named("cw")), "out", dS)
	}},
	"cogroup-sliding": {"left:string,right:long", "out:string", func(b *kstream.Builder) {
		c := dCogroupLong(b)
		dWindowedOut(kstream.AggregateCogroupedWindowed(c, kstream.Sliding(10*dMs).Grace(5*dMs), func() string { return "" }, dS,
			kstream.Named("cs")), "out", dS)
	}},
	"cogroup-session": {"left:string,right:long", "out:string", func(b *kstream.Builder) {
		c := dCogroupLong(b)
		dWindowedOut(kstream.AggregateCogroupedSession(c, 10*dMs, 5*dMs, func() string { return "" },
			func(_, a1, a2 string) string { return a1 + "|" + a2 }, dS, kstream.Named("cses")), "out", dS)
	}},

	// -------------------------------------------------- stream-stream joins

	"ss-join": {"left:string,right:string", "out:string", func(b *kstream.Builder) {
		kstream.Join(dIn(b, "left"), dIn(b, "right"), kstream.JoinWindow(10*dMs, 10*dMs), dJoin, kstream.Named("j")).To("out", dS, dS)
	}},
	"ss-join-grace": {"left:string,right:string", "out:string", func(b *kstream.Builder) {
		kstream.Join(dIn(b, "left"), dIn(b, "right"), kstream.JoinWindow(10*dMs, 10*dMs).Grace(5*dMs), dJoin, kstream.Named("j")).To("out", dS, dS)
	}},
	"ss-join-asymmetric": {"left:string,right:string", "out:string", func(b *kstream.Builder) {
		kstream.Join(dIn(b, "left"), dIn(b, "right"), kstream.JoinWindow(2*dMs, 10*dMs).Grace(5*dMs), dJoin, kstream.Named("j")).To("out", dS, dS)
	}},
	"ss-left-join": {"left:string,right:string", "out:string", func(b *kstream.Builder) {
		kstream.LeftJoin(dIn(b, "left"), dIn(b, "right"), kstream.JoinWindow(10*dMs, 10*dMs), dLeftJoin, kstream.Named("j")).To("out", dS, dS)
	}},
	"ss-left-join-grace": {"left:string,right:string", "out:string", func(b *kstream.Builder) {
		kstream.LeftJoin(dIn(b, "left"), dIn(b, "right"), kstream.JoinWindow(10*dMs, 10*dMs).Grace(5*dMs), dLeftJoin, kstream.Named("j")).To("out", dS, dS)
	}},
	"ss-outer-join": {"left:string,right:string", "out:string", func(b *kstream.Builder) {
		kstream.OuterJoin(dIn(b, "left"), dIn(b, "right"), kstream.JoinWindow(10*dMs, 10*dMs), dOuterJoin, kstream.Named("j")).To("out", dS, dS)
	}},
	"ss-outer-join-grace": {"left:string,right:string", "out:string", func(b *kstream.Builder) {
		kstream.OuterJoin(dIn(b, "left"), dIn(b, "right"), kstream.JoinWindow(10*dMs, 10*dMs).Grace(5*dMs), dOuterJoin, kstream.Named("j")).To("out", dS, dS)
	}},
	"ss-join-rekeyed": {"left:string,right:string", "out:string", func(b *kstream.Builder) {
		l := kstream.SelectKey(dIn(b, "left"), func(_, v string) string { return dFirst(v) })
		kstream.Join(l, dIn(b, "right"), kstream.JoinWindow(10*dMs, 10*dMs), dJoin, kstream.Named("rk")).To("out", dS, dS)
	}},

	// --------------------------------------------------- stream-table joins

	"st-join": {"in:string,table:string", "out:string", func(b *kstream.Builder) {
		kstream.JoinTable(dIn(b, "in"), dTable(b, "table", "t"), dJoin).To("out", dS, dS)
	}},
	"st-left-join": {"in:string,table:string", "out:string", func(b *kstream.Builder) {
		kstream.LeftJoinTable(dIn(b, "in"), dTable(b, "table", "t"), dLeftJoin).To("out", dS, dS)
	}},
	"st-join-rekeyed": {"in:string,table:string", "out:string", func(b *kstream.Builder) {
		s := kstream.SelectKey(dIn(b, "in"), func(_, v string) string { f, _ := dFK(v); return f })
		kstream.JoinTable(s, dTable(b, "table", "t"), dJoin, kstream.Named("rk")).To("out", dS, dS)
	}},

	// -------------------------------------------------- stream-global joins

	"sg-join": {"in:string,global:string", "out:string", func(b *kstream.Builder) {
		g := kstream.SourceGlobalTable(b, "global", dS, dS, kstream.Named("g"))
		kstream.JoinGlobal(dIn(b, "in"), g, func(_, v string) string { f, _ := dFK(v); return f }, dJoin).To("out", dS, dS)
	}},
	"sg-left-join": {"in:string,global:string", "out:string", func(b *kstream.Builder) {
		g := kstream.SourceGlobalTable(b, "global", dS, dS, kstream.Named("g"))
		kstream.LeftJoinGlobal(dIn(b, "in"), g, func(_, v string) string { f, _ := dFK(v); return f }, dLeftJoin).To("out", dS, dS)
	}},
}

func dTumblingEmitClose(b *kstream.Builder) {
	dWindowedOut(kstream.WindowedBy(dIn(b, "in").GroupByKey(), kstream.Tumbling(10*dMs).Grace(5*dMs)).
		Count(kstream.Named("wc"), kstream.EmitOnWindowClose()), "out", dL)
}

func dHoppingEmitClose(b *kstream.Builder) {
	dWindowedOut(kstream.WindowedBy(dIn(b, "in").GroupByKey(), kstream.Hopping(10*dMs, 5*dMs).Grace(5*dMs)).
		Count(kstream.Named("wc"), kstream.EmitOnWindowClose()), "out", dL)
}

func dSessionEmitClose(b *kstream.Builder) {
	dWindowedOut(kstream.SessionWindowedBy(dIn(b, "in").GroupByKey(), 10*dMs).Grace(5*dMs).
		Reduce(dConcat, kstream.Named("ssr"), kstream.EmitOnWindowClose()), "out", dS)
}

// dUpper is proc-values-count's processor: values upper-cased one
// millisecond later, "skip" dropped, "dup" forwarded twice (the second time
// with its timestamp), tombstones passed on.
type dUpper struct {
	ctx *kstream.FixedKeyContext[string, string]
}

func (p *dUpper) Init(ctx *kstream.FixedKeyContext[string, string]) error {
	p.ctx = ctx
	return nil
}

func (p *dUpper) Process(r kstream.FixedKeyRecord[string, string]) error {
	switch {
	case r.Tombstone:
		p.ctx.Forward(r)
		return nil
	case r.Value == "skip":
		return nil
	}
	up := r
	up.Value, up.Timestamp = strings.ToUpper(r.Value), r.Timestamp+1
	p.ctx.Forward(up)
	if r.Value == "dup" {
		r.Value = "DUP2"
		p.ctx.Forward(r)
	}
	return nil
}

func (p *dUpper) Close() error { return nil }

// dAppend is a cogroup aggregator of strings: it appends sep and the value.
func dAppend(sep string) func(_, v, a string) string {
	return func(_, v, a string) string { return a + sep + v }
}

// dCogroupLong cogroups "left" (strings, appended as "+v") with "right"
// (longs, appended as "#v"), both grouped by key.
func dCogroupLong(b *kstream.Builder) kstream.Cogrouped[string, string] {
	right := kstream.Source(b, "right", dS, dL).GroupByKey()
	return kstream.CogroupWith(kstream.Cogroup(dIn(b, "left").GroupByKey(), dAppend("+")), right,
		func(_ string, v int64, a string) string { return a + "#" + strconv.FormatInt(v, 10) })
}
