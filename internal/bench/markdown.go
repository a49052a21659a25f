package bench

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

func itoa[T ~int | ~int64](n T) string { return strconv.FormatInt(int64(n), 10) }

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K { return slices.Sorted(maps.Keys(m)) }

// f1, f2, f3 format with that many decimals.
func f1(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }
func f2(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) }
func f3(x float64) string { return strconv.FormatFloat(x, 'f', 3, 64) }

func ms(d time.Duration) string { return f1(float64(d) / float64(time.Millisecond)) }

func secs(d time.Duration) string { return f2(d.Seconds()) + " s" }

func mib(bytes float64) string { return f1(bytes / (1 << 20)) }

// percentile returns the p-th percentile (0..100, nearest rank) of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func passMark(c Check) string {
	switch {
	case c.Pass:
		return "pass"
	case c.Invariant:
		return "**FAIL (invariant)**"
	default:
		return "**miss**"
	}
}

// WriteMarkdown writes the report.
func (r *Report) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	p := func(format string, a ...any) { fmt.Fprintf(bw, format, a...) }
	mode := "full"
	if r.Quick {
		mode = "quick (-quick: reduced sizes and windows)"
	}
	p("# friendsync benchmark report\n\n")
	if r.Command != "" {
		p("Command: `%s` — %s run, %s → %s (%s).\n\n", r.Command, mode, r.Started.Format(time.RFC3339),
			r.Finished.Format("15:04:05"), r.Finished.Sub(r.Started).Round(time.Second))
	}
	m := r.Machine
	p("## Machine\n\n")
	p("| | |\n|---|---|\n")
	p("| CPUs (nproc) / GOMAXPROCS | %d / %d |\n", m.NumCPU, m.GOMAXPROCS)
	if m.CPUModel != "" {
		p("| CPU | %s |\n", m.CPUModel)
	}
	if m.MemTotal != "" {
		p("| memory | %s |\n", m.MemTotal)
	}
	p("| kernel / Go | %s / %s |\n", m.Kernel, m.GoVersion)
	p("| NATS | %s at %s |\n", m.NATSVersion, m.NATSURL)
	p("| Redis | %s at %s |\n", m.RedisVersion, m.RedisURL)
	p("| load average (1, 5, 15 min) at start / end | %s / %s |\n\n", m.LoadStart, r.LoadEnd)
	p("The machine is shared: other processes ran during the measurements. Compare the ratios (each measured against a baseline in the same run), not the absolute rates, and see each section's load.\n\n")

	p("## Summary\n\n")
	p("| measurement | figure | got | target | result |\n|---|---|---|---|---|\n")
	for _, c := range r.Checks() {
		p("| %s | %s | %s | %s | %s |\n", c.Measurement, c.What, c.Got, c.Target, passMark(c))
	}
	for _, s := range r.Sections {
		if s.Err != nil {
			p("| %s | **measurement error** | %s | | **FAIL** |\n", s.Name, strings.ReplaceAll(s.Err.Error(), "|", "/"))
		}
	}
	p("\n")
	if f := r.Failures(); len(f) > 0 {
		p("**Broken invariants or errors: %d.**\n\n", len(f))
	} else {
		p("No invariant broken (\"miss\" marks a speed or efficiency target not reached on this run).\n\n")
	}

	for _, s := range r.Sections {
		p("## %s\n\n", s.Title)
		p("_Load %s → %s; %s wall, %s CPU of this process._\n\n", s.LoadBeg, s.LoadEnd,
			s.Elapsed.Round(100*time.Millisecond), s.CPU.Round(100*time.Millisecond))
		if s.Intro != "" {
			p("%s\n\n", strings.TrimSpace(s.Intro))
		}
		if s.Err != nil {
			p("**Error:** %v\n\n", s.Err)
		}
		for _, t := range s.Tables {
			writeTable(bw, t)
		}
		if s.Raw != "" {
			p("```\n%s\n```\n\n", strings.TrimRight(s.Raw, "\n"))
		}
		if len(s.Checks) > 0 {
			p("| figure | got | target | result |\n|---|---|---|---|\n")
			for _, c := range s.Checks {
				p("| %s | %s | %s | %s |\n", c.What, c.Got, c.Target, passMark(c))
			}
			p("\n")
		}
		for _, n := range s.Notes {
			p("- %s\n", n)
		}
		if len(s.Notes) > 0 {
			p("\n")
		}
	}
	return bw.Flush()
}

func writeTable(w io.Writer, t Table) {
	if t.Caption != "" {
		fmt.Fprintf(w, "%s\n\n", t.Caption)
	}
	fmt.Fprintf(w, "| %s |\n|", strings.Join(t.Header, " | "))
	for range t.Header {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w)
	for _, row := range t.Rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	fmt.Fprintln(w)
}
