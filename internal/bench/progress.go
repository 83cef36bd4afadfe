package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress rewrites one status line on w every 500 ms: what runs, how many
// records are done, and the rate over the last interval.
type progress struct {
	w     io.Writer
	mu    sync.Mutex
	label string
	count func() int64
	last  int64
	lastT time.Time
	width int
	stopc chan struct{}
	done  chan struct{}
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, stopc: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	return p
}

// set shows label and the records counted by count (nil: none).
func (p *progress) set(label string, count func() int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.label, p.count, p.last, p.lastT = label, count, 0, time.Now()
	if count != nil {
		p.last = count()
	}
	p.print(p.last, 0)
}

func (p *progress) loop() {
	defer close(p.done)
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stopc:
			return
		case now := <-t.C:
			p.mu.Lock()
			if p.count != nil {
				n := p.count()
				rate := float64(n-p.last) / now.Sub(p.lastT).Seconds()
				p.last, p.lastT = n, now
				p.print(n, rate)
			}
			p.mu.Unlock()
		}
	}
}

func (p *progress) print(n int64, rate float64) {
	line := p.label
	if p.count != nil {
		line = fmt.Sprintf("%s  %d records  %s rec/s", p.label, n, human(rate))
	}
	pad := max(p.width-len(line), 0)
	p.width = len(line)
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
}

// clear erases the line; stop ends the updates.
func (p *progress) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.width > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
		p.width = 0
	}
	p.count = nil
}

func (p *progress) stop() {
	close(p.stopc)
	<-p.done
	p.clear()
}

// human formats a rate: 1234567 → "1.23M".
func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}
