package enqueue

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// Progress modes (--progress).
const (
	progressAuto  = "auto"  // bar on a terminal, else plain lines
	progressBar   = "bar"   // one line redrawn ~5×/s
	progressPlain = "plain" // a line every 5 s
	progressOff   = "off"
)

const (
	barEvery   = 200 * time.Millisecond
	plainEvery = 5 * time.Second
	rateWindow = 5 * time.Second
)

// counters are updated by the publish pipeline and read by the progress
// line and the summary.
type counters struct {
	published  atomic.Int64 // acknowledged, stored
	duplicates atomic.Int64 // acknowledged as duplicates (PubAck.Duplicate)
	retries    atomic.Int64 // failed attempts (each retried or failing the run)
}

func (c *counters) done() int64 { return c.published.Load() + c.duplicates.Load() }

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress prints the progress line until stop.
type progress struct {
	w      io.Writer
	bar    bool
	every  time.Duration
	total  int64
	c      *counters
	paused func() string // the stream a pause waits for, "" when not paused
	start  time.Time

	mu      sync.Mutex // serialises writes with note()
	samples []sample
	drawn   bool
	stopc   chan struct{}
	donec   chan struct{}
}

type sample struct {
	t    time.Time
	done int64
}

func newProgress(mode string, w io.Writer, terminal bool, total int64, c *counters, paused func() string) *progress {
	p := &progress{w: w, total: total, c: c, paused: paused, start: time.Now()}
	switch mode {
	case progressOff:
		return p
	case progressBar:
		p.bar = true
	case progressAuto:
		p.bar = terminal
	}
	p.every = plainEvery
	if p.bar {
		p.every = barEvery
	}
	return p
}

// run starts the ticker; stop ends it and clears the bar.
func (p *progress) run() {
	if p.every == 0 {
		return
	}
	p.stopc, p.donec = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.donec)
		t := time.NewTicker(p.every)
		defer t.Stop()
		for {
			select {
			case now := <-t.C:
				p.draw(now)
			case <-p.stopc:
				return
			}
		}
	}()
}

func (p *progress) stop() {
	if p.stopc == nil {
		return
	}
	close(p.stopc)
	<-p.donec
	p.stopc = nil
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

// note prints a line (a pause, a warning) without tearing the bar.
func (p *progress) note(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
	fmt.Fprintln(p.w, s)
}

func (p *progress) draw(now time.Time) {
	done := p.c.done()
	p.samples = append(p.samples, sample{now, done})
	for len(p.samples) > 2 && now.Sub(p.samples[1].t) >= rateWindow {
		p.samples = p.samples[1:]
	}
	rate := 0.0
	if first := p.samples[0]; len(p.samples) > 1 && now.After(first.t) {
		rate = float64(done-first.done) / now.Sub(first.t).Seconds()
	} else if el := now.Sub(p.start); el > 0 {
		rate = float64(done) / el.Seconds()
	}
	pausedOn := ""
	if p.paused != nil {
		pausedOn = p.paused()
	}
	line := progressLine(p.bar, done, p.total, rate, p.c.retries.Load(), pausedOn)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar {
		fmt.Fprint(p.w, "\r"+line+"\x1b[K")
		p.drawn = true
	} else {
		fmt.Fprintln(p.w, line)
	}
}

// progressLine formats one progress line; pausedOn names the stream a
// pause waits for.
func progressLine(bar bool, done, total int64, rate float64, errors int64, pausedOn string) string {
	var b strings.Builder
	frac := 1.0
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	if bar {
		const width = 24
		n := int(frac * width)
		b.WriteString("[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "] ")
	} else {
		b.WriteString("progress: ")
	}
	fmt.Fprintf(&b, "%d/%d (%.1f%%)  %.0f ev/s  ETA %s  errors %d", done, total, 100*frac, rate, eta(total-done, rate), errors)
	if pausedOn != "" {
		b.WriteString("  PAUSED (stream " + pausedOn + " over half full)")
	}
	return b.String()
}

// eta formats the time left at rate, "?" when unknown.
func eta(left int64, rate float64) string {
	if left <= 0 {
		return "0s"
	}
	if rate <= 0 {
		return "?"
	}
	secs := float64(left) / rate
	if secs > 100*3600 {
		return "?"
	}
	return time.Duration(secs * float64(time.Second)).Round(time.Second).String()
}
