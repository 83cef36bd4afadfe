package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"
)

// run runs every scenario, mode and implementation of cfg, one after the
// other, writes the results to cfg.out and the table to stdout. It returns
// an error if any run failed (after writing what was measured).
func run(ctx context.Context, cfg *config, stdout, stderr io.Writer) (*results, error) {
	if err := resolveStreams(cfg, stderr); err != nil {
		return nil, err
	}
	res := newResults(cfg)
	if len(cfg.brokers) == 0 {
		// The embedded cluster's logs live in this heap: about 640
		// bytes per passthrough record at its peak.
		warmHeap(min(max(cfg.records*640, 64<<20), 2<<30))
	}
	prog := newProgress(stderr)
	var failed []error
	add := func(r row, err error) {
		if err != nil {
			r.Error = err.Error()
			failed = append(failed, fmt.Errorf("%s %s %s %s: %w", r.Scenario, r.Mode, r.Impl, r.Variant, err))
		}
		res.Rows = append(res.Rows, r)
		runtime.GC() // the next run starts from a clean heap
	}
	impls := []string{implKstream, implHand}
	if cfg.streams != nil {
		impls = append(impls, implStreams)
	}
	for _, sc := range cfg.scenarios {
		for _, mode := range cfg.modes {
			switch sc {
			case scenarioPassthrough:
				// Repeats alternate the order, and the median run by
				// records/s is reported.
				runs := map[string][]row{}
				for rep := range cfg.repeat {
					order := impls
					if rep%2 == 1 {
						order = slices.Clone(impls)
						slices.Reverse(order)
					}
					for _, impl := range order {
						if ctx.Err() != nil {
							break
						}
						start := time.Now()
						r, err := runPassthrough(ctx, cfg, prog, mode, impl, stderr)
						r.RunSeconds = time.Since(start).Seconds()
						if err != nil {
							r.Error = err.Error()
						}
						runs[impl] = append(runs[impl], r)
						runtime.GC()
					}
				}
				for _, impl := range impls {
					if len(runs[impl]) > 0 {
						if cfg.repeat > 1 {
							res.Runs = append(res.Runs, runs[impl]...)
						}
						r, err := median(runs[impl])
						add(r, err)
					}
				}
			case scenarioRestore, scenarioGlobal: // modes are the state backends: once
				if mode != cfg.modes[0] {
					break
				}
				for _, backend := range []string{backendMemory, backendPebble} {
					if ctx.Err() != nil {
						break
					}
					start := time.Now()
					var raw row
					var ks []row
					var streams *row
					var err error
					if sc == scenarioRestore {
						var r row
						raw, r, streams, err = runRestore(ctx, cfg, prog, backend, stderr)
						ks = []row{r}
					} else {
						var first, again row
						raw, first, again, streams, err = runGlobal(ctx, cfg, prog, backend, stderr)
						ks = []row{first, again}
					}
					raw.RunSeconds = time.Since(start).Seconds()
					add(raw, nil)
					for _, r := range ks {
						r.RunSeconds = raw.RunSeconds
						add(r, err)
					}
					if streams != nil {
						var serr error
						if streams.Error != "" {
							serr = errors.New(streams.Error)
						}
						streams.RunSeconds = raw.RunSeconds
						add(*streams, serr)
					}
				}
			case scenarioCount: // no mode: once
				if mode == cfg.modes[0] && ctx.Err() == nil {
					start := time.Now()
					r, err := runCount(ctx, cfg, prog, stderr)
					r.RunSeconds = time.Since(start).Seconds()
					add(r, err)
				}
			case scenarioLatency:
				if ctx.Err() == nil {
					start := time.Now()
					r, err := runLatency(ctx, cfg, prog, mode, implFloor, 0, 0, stderr)
					r.RunSeconds = time.Since(start).Seconds()
					add(r, err)
				}
				for bi, batch := range cfg.batches {
					for _, linger := range []time.Duration{defaultLinger, 0} {
						for _, impl := range impls {
							if ctx.Err() != nil {
								break
							}
							if impl == implStreams && bi > 0 {
								continue // once per linger: see runLatency
							}
							start := time.Now()
							r, err := runLatency(ctx, cfg, prog, mode, impl, batch, linger, stderr)
							r.RunSeconds = time.Since(start).Seconds()
							add(r, err)
						}
					}
				}
			default: // stateful (wordcount, windowed, join): no hand-written loop
				for _, impl := range []string{implKstream, implStreams} {
					if ctx.Err() != nil || impl == implStreams && cfg.streams == nil {
						continue
					}
					start := time.Now()
					r, err := runStateful(ctx, cfg, prog, findStateful(sc), mode, impl, stderr)
					r.RunSeconds = time.Since(start).Seconds()
					add(r, err)
				}
			}
		}
	}
	prog.stop()
	res.LoadAvgEnd = loadAvg()
	res.computeRatios()
	werr := res.write(cfg.out)
	res.printTable(stdout)
	if ctx.Err() != nil {
		failed = append(failed, ctx.Err())
	}
	return res, errors.Join(append(failed, werr)...)
}

// median returns the run with the median records/s of rs (the lower middle
// one for an even count), noting the spread; any failed run fails it.
func median(rs []row) (row, error) {
	for _, r := range rs {
		if r.Error != "" {
			return r, errors.New(r.Error)
		}
	}
	if len(rs) == 1 {
		return rs[0], nil
	}
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b row) int { return cmp.Compare(a.RecordsPerSec, b.RecordsPerSec) })
	m := s[(len(s)-1)/2]
	m.Note = joinNote(m.Note, fmt.Sprintf("median of %d runs, %s-%s rec/s", len(s), human(s[0].RecordsPerSec), human(s[len(s)-1].RecordsPerSec)))
	return m, nil
}
