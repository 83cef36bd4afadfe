package kafkaio_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kafkaio"
	"github.com/kstreamgo/kstream/serde"
)

// TestInteractiveQueries runs two instances of a count, each advertising the
// address of an HTTP server with a StoreHandler, and checks that every key
// is readable where its partition is (and ErrNotLocal elsewhere), that both
// instances name the same host for every key, that a query to either server
// answers every key (redirected to the other instance when needed), and
// that All on both instances together sees every key once.
func TestInteractiveQueries(t *testing.T) {
	for _, persistent := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "pebble"}[persistent], func(t *testing.T) {
			forEachCluster(t, func(t *testing.T, c cluster) {
				testInteractiveQueries(t, c, persistent)
			})
		})
	}
}

type queryInstance struct {
	app    *kafkaio.App
	reader *kafkaio.StoreReader[string, int64]
	srv    *httptest.Server
}

func testInteractiveQueries(t *testing.T, c cluster, persistent bool) {
	in, out, appID := unique("in"), unique("out"), unique("query")
	const parts = 4
	mustCreate(t, c, parts, in, out)
	topo := groupCount(t, in, out)
	start := func() *queryInstance {
		var h atomic.Pointer[http.Handler]
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			(*h.Load()).ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		addr := strings.TrimPrefix(srv.URL, "http://")
		opts := appOpts(c, appID, false, kafkaio.AdvertisedAddr(addr))
		if persistent {
			opts = append(opts, kafkaio.StateDir(t.TempDir()), kafkaio.MemoryBudget(64<<20))
		}
		app, err := kafkaio.NewApp(topo, opts...)
		if err != nil {
			t.Fatal(err)
		}
		r, err := kafkaio.Store(app, "group-counts", serde.String, serde.Int64)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.Get("g0"); !errors.Is(err, kafkaio.ErrNotRunning) {
			t.Fatalf("Get before Run: %v, want ErrNotRunning", err)
		}
		handler := kafkaio.StoreHandler(r, func(s string) (string, error) {
			if s == "" {
				return "", errors.New("empty key")
			}
			return s, nil
		})
		h.Store(&handler)
		runApp(t, app)
		return &queryInstance{app: app, reader: r, srv: srv}
	}
	insts := []*queryInstance{start(), start()}
	f := newFeeder(t, c, in, 40)
	f.feed(4000)
	for _, q := range insts {
		waitCaughtUp(t, q.app, 2*time.Minute)
	}
	// Both instances hold tasks, and know who holds every key.
	// A second instance's join can move stateful tasks after both caught
	// up; a moved task restores before it serves reads (the state is
	// REBALANCING meanwhile), so wait for a settled group: both RUNNING, and
	// every key held by exactly one of them.
	waitFor(t, time.Minute, "both instances to run tasks, know every key's host and hold each key once", func() bool {
		for _, q := range insts {
			if q.app.Stats().Tasks == 0 || q.app.State() != kafkaio.StateRunning {
				return false
			}
			for k := range f.want {
				if active, _, err := q.reader.Hosts(k); err != nil || active == "" {
					return false
				}
			}
		}
		for k := range f.want {
			n := 0
			for _, q := range insts {
				if _, _, err := q.reader.Get(k); err == nil {
					n++
				}
			}
			if n != 1 {
				return false
			}
		}
		return true
	})
	addrOf := func(q *queryInstance) string { return strings.TrimPrefix(q.srv.URL, "http://") }

	for k, want := range f.want {
		var holders []string
		for _, q := range insts {
			v, ok, err := q.reader.Get(k)
			switch {
			case errors.Is(err, kafkaio.ErrNotLocal):
			case err != nil:
				t.Fatalf("Get(%s): %v", k, err)
			case !ok || v != want:
				t.Errorf("Get(%s) on %s = %d, %v; want %d", k, addrOf(q), v, ok, want)
			default:
				holders = append(holders, addrOf(q))
			}
		}
		if len(holders) != 1 {
			t.Fatalf("key %s read on %d instances (%v), want exactly 1", k, len(holders), holders)
		}
		for _, q := range insts {
			if active, _, _ := q.reader.Hosts(k); active != holders[0] {
				t.Errorf("Hosts(%s) on %s = %s, but %s holds it", k, addrOf(q), active, holders[0])
			}
		}
		// Over HTTP, from either instance (the client follows the redirect).
		for _, q := range insts {
			resp, err := http.Get(q.srv.URL + "/counts?key=" + url.QueryEscape(k))
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				Key   string
				Value int64
				Error string
			}
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || body.Key != k || body.Value != want {
				t.Errorf("GET %s on %s: %d %+v (%v), want 200 with %d", k, addrOf(q), resp.StatusCode, body, err, want)
			}
		}
	}

	seen := map[string]int64{}
	for _, q := range insts {
		if err := q.reader.All(func(k string, v int64) bool {
			if _, dup := seen[k]; dup {
				t.Errorf("All: key %s on both instances", k)
			}
			seen[k] = v
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	checkCounts(t, seen, f.want, true)
	if len(seen) != len(f.want) {
		t.Errorf("All saw %d keys, want %d", len(seen), len(f.want))
	}

	// Range and Prefix: the union over the instances is exactly the keys
	// in byte order between the bounds, each on one instance.
	for _, sc := range []struct {
		name string
		scan func(r *kafkaio.StoreReader[string, int64], fn func(string, int64) bool) error
		in   func(k string) bool
	}{
		{"Range(g1, g2)", func(r *kafkaio.StoreReader[string, int64], fn func(string, int64) bool) error {
			return r.Range("g1", "g2", fn)
		}, func(k string) bool { return k >= "g1" && k <= "g2" }},
		{"Range(g2, g1)", func(r *kafkaio.StoreReader[string, int64], fn func(string, int64) bool) error {
			return r.Range("g2", "g1", fn)
		}, func(string) bool { return false }},
		{"Prefix(g3)", func(r *kafkaio.StoreReader[string, int64], fn func(string, int64) bool) error {
			return r.Prefix("g3", fn)
		}, func(k string) bool { return strings.HasPrefix(k, "g3") }},
	} {
		got, want := map[string]int64{}, map[string]int64{}
		for k, v := range f.want {
			if sc.in(k) {
				want[k] = v
			}
		}
		for _, q := range insts {
			if err := sc.scan(q.reader, func(k string, v int64) bool {
				if _, dup := got[k]; dup {
					t.Errorf("%s: key %s on both instances", sc.name, k)
				}
				if !sc.in(k) {
					t.Errorf("%s: key %s out of bounds", sc.name, k)
				}
				got[k] = v
				return true
			}); err != nil {
				t.Fatalf("%s: %v", sc.name, err)
			}
		}
		if !maps.Equal(got, want) || (sc.name != "Range(g2, g1)" && len(want) < 2) {
			t.Errorf("%s = %v, want %v", sc.name, got, want)
		}
	}
	// fn returning false stops the scan: after one key, on an instance that
	// holds some (a rebalance, as a warmup replica catches up, may leave one
	// instance without tasks for a while).
	waitFor(t, time.Minute, "a prefix scan stopped by fn", func() bool {
		for _, q := range insts {
			calls := 0
			err := q.reader.Prefix("g", func(string, int64) bool { calls++; return false })
			if err != nil || calls > 1 {
				t.Fatalf("Prefix stopped by fn: %d calls (%v), want 1", calls, err)
			}
			if calls == 1 {
				return true
			}
		}
		return false
	})

	// The other answers.
	for _, tc := range []struct {
		method, query string
		status        int
	}{
		{"GET", "key=nope", http.StatusNotFound},
		{"GET", "key=", http.StatusBadRequest},
		{"POST", "key=g1", http.StatusMethodNotAllowed},
	} {
		req, _ := http.NewRequest(tc.method, insts[0].srv.URL+"/counts?"+tc.query, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// "nope" may live on the other instance: the redirect is followed.
		if resp.StatusCode != tc.status {
			t.Errorf("%s ?%s: status %d, want %d", tc.method, tc.query, resp.StatusCode, tc.status)
		}
	}
}

// TestStoreErrors checks what Store refuses: an unknown store (the error
// lists the key-value stores), a window store, a nil serde.
func TestStoreErrors(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Source(b, "in", serde.String, serde.String)
	s.GroupByKey().Count(kstream.Named("counts"))
	kstream.WindowedBy(s.GroupByKey(), kstream.Tumbling(time.Minute)).Count(kstream.Named("windowed"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	app, err := kafkaio.NewApp(topo, kafkaio.AppID("store-errors"), kafkaio.Brokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kafkaio.Store(app, "nope", serde.String, serde.Int64); err == nil || !strings.Contains(err.Error(), `"counts"`) {
		t.Errorf("unknown store: %v, want an error listing \"counts\"", err)
	}
	if _, err := kafkaio.Store(app, "windowed", serde.String, serde.Int64); err == nil || !strings.Contains(err.Error(), "WindowStore") {
		t.Errorf("window store: %v, want a refusal", err)
	}
	if _, err := kafkaio.WindowStore(app, "counts", serde.String, serde.Int64); err == nil || !strings.Contains(err.Error(), "not the store of a windowed aggregation") {
		t.Errorf("WindowStore of a key-value store: %v, want a refusal", err)
	}
	if _, err := kafkaio.WindowStore(app, "nope", serde.String, serde.Int64); err == nil || !strings.Contains(err.Error(), `"windowed"`) {
		t.Errorf("unknown window store: %v, want an error listing \"windowed\"", err)
	}
	if _, err := kafkaio.Store[string, int64](app, "counts", nil, serde.Int64); err == nil {
		t.Error("nil key serde: no error")
	}
	r, err := kafkaio.Store(app, "counts", serde.String, serde.Int64)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Hosts("k"); !errors.Is(err, kafkaio.ErrNotRunning) {
		t.Errorf("Hosts before Run: %v, want ErrNotRunning", err)
	}
	if err := r.All(func(string, int64) bool { return true }); !errors.Is(err, kafkaio.ErrNotRunning) {
		t.Errorf("All before Run: %v, want ErrNotRunning", err)
	}
}

// TestStaleQueries runs two instances with a standby of every task: once
// the standbys have applied the changelogs, every key reads on both
// instances with GetStale (on one from the active task, on the other from
// its standby), with the right count.
func TestStaleQueries(t *testing.T) {
	for _, persistent := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "pebble"}[persistent], func(t *testing.T) {
			forEachCluster(t, func(t *testing.T, c cluster) {
				in, out, appID := unique("in"), unique("out"), unique("stale")
				const parts = 4
				mustCreate(t, c, parts, in, out)
				topo := groupCount(t, in, out)
				var readers []*kafkaio.StoreReader[string, int64]
				var apps []*kafkaio.App
				for range 2 {
					opts := appOpts(c, appID, false, kafkaio.StandbyReplicas(1))
					if persistent {
						opts = append(opts, kafkaio.StateDir(t.TempDir()), kafkaio.MemoryBudget(64<<20))
					}
					a, err := kafkaio.NewApp(topo, opts...)
					if err != nil {
						t.Fatal(err)
					}
					r, err := kafkaio.Store(a, "group-counts", serde.String, serde.Int64)
					if err != nil {
						t.Fatal(err)
					}
					runApp(t, a)
					apps, readers = append(apps, a), append(readers, r)
				}
				waitFor(t, time.Minute, "both instances to hold tasks and standbys", func() bool {
					sa, sb := apps[0].Stats(), apps[1].Stats()
					return sa.Tasks > 0 && sb.Tasks > 0 && sa.Standbys > 0 && sb.Standbys > 0 && sa.Tasks+sb.Tasks == 2*parts
				})
				f := newFeeder(t, c, in, 40)
				f.feed(4000)
				for _, a := range apps {
					waitCaughtUp(t, a, 2*time.Minute)
				}
				waitFor(t, time.Minute, "every key to read right on both instances, from a task or a standby", func() bool {
					for k, want := range f.want {
						for _, r := range readers {
							if v, ok, err := r.GetStale(k); err != nil || !ok || v != want {
								return false
							}
						}
					}
					return true
				})
				for k := range f.want {
					local := 0
					for _, r := range readers {
						if _, _, err := r.Get(k); err == nil {
							local++
						}
					}
					if local != 1 {
						t.Fatalf("key %s: Get works on %d instances, want 1 (GetStale reads the other's standby)", k, local)
					}
				}
			})
		})
	}
}

// TestWindowQueries counts per key and minute on one instance and reads the
// windows back by key and time range. The grace period keeps the windows
// open: without kstream.Retention, a closed window leaves the store.
func TestWindowQueries(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		fetch := perMinuteCounts(t, c, kstream.Tumbling(time.Minute).Grace(time.Hour), []rec{
			{key: []byte("a"), value: []byte("x"), ts: 1_000}, {key: []byte("a"), value: []byte("x"), ts: 2_000},
			{key: []byte("b"), value: []byte("x"), ts: 5_000}, {key: []byte("a"), value: []byte("x"), ts: 61_000},
		})
		for _, tc := range []struct {
			key      string
			from, to int64
			want     []string
		}{
			{"a", 0, math.MaxInt64, []string{"a[0,60000)=2", "a[60000,120000)=1"}},
			{"a", 1, 60_000, []string{"a[60000,120000)=1"}},
			{"a", 0, 59_999, []string{"a[0,60000)=2"}},
			{"b", 0, math.MaxInt64, []string{"b[0,60000)=1"}},
			{"b", math.MinInt64, math.MaxInt64, []string{"b[0,60000)=1"}},
			{"c", 0, math.MaxInt64, nil},
		} {
			if got := fetch(tc.key, tc.from, tc.to); !slices.Equal(got, tc.want) {
				t.Errorf("Fetch(%s, %d, %d) = %q, want %q", tc.key, tc.from, tc.to, got, tc.want)
			}
		}
	})
}

// TestWindowQueriesRetention counts per key and minute without grace: the
// record at 61s closes a's first minute, which Fetch still returns with
// kstream.Retention, and not without.
func TestWindowQueriesRetention(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		for _, tc := range []struct {
			name string
			opts []kstream.Opt
			want []string
		}{
			{"default", nil, []string{"a[60000,120000)=1"}},
			{"retention", []kstream.Opt{kstream.Retention(time.Hour)}, []string{"a[0,60000)=2", "a[60000,120000)=1"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				fetch := perMinuteCounts(t, c, kstream.Tumbling(time.Minute), []rec{
					{key: []byte("a"), value: []byte("x"), ts: 1_000}, {key: []byte("a"), value: []byte("x"), ts: 2_000},
					{key: []byte("a"), value: []byte("x"), ts: 61_000},
				}, tc.opts...)
				if got := fetch("a", 0, math.MaxInt64); !slices.Equal(got, tc.want) {
					t.Errorf("Fetch(a) = %q, want %q", got, tc.want)
				}
			})
		}
	})
}

// perMinuteCounts runs an app counting the records of recs per key in
// windows (named per-minute, with opts) on c until it has processed them,
// and returns a function that fetches a key's windows with start in [from,
// to] from its WindowStore, as "key[start,end)=count".
func perMinuteCounts(t *testing.T, c cluster, windows kstream.TimeWindows, recs []rec, opts ...kstream.Opt) func(k string, from, to int64) []string {
	t.Helper()
	in, appID := unique("in"), unique("windows")
	mustCreate(t, c, 2, in)
	b := kstream.NewBuilder()
	kstream.WindowedBy(kstream.Source(b, in, serde.String, serde.String).GroupByKey(), windows).
		Count(append([]kstream.Opt{kstream.Named("per-minute")}, opts...)...)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	produce(t, c, in, recs)
	a, err := kafkaio.NewApp(topo, appOpts(c, appID, false)...)
	if err != nil {
		t.Fatal(err)
	}
	r, err := kafkaio.WindowStore(a, "per-minute", serde.String, serde.Int64)
	if err != nil {
		t.Fatal(err)
	}
	runApp(t, a)
	waitCaughtUp(t, a, time.Minute)
	return func(k string, from, to int64) []string {
		t.Helper()
		var got []string
		if err := r.Fetch(k, from, to, func(w kstream.Windowed[string], n int64) bool {
			got = append(got, fmt.Sprintf("%s[%d,%d)=%d", w.Key, w.Start, w.End, n))
			return true
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
}
