package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// microRun is one go test -bench invocation.
type microRun struct {
	pkg  string
	args []string
}

func microRuns(sc scale) []microRun {
	count := strconv.Itoa(sc.microCount)
	return []microRun{
		{"./internal/deliver", []string{"test", "-run", "^$", "-bench", ".", "-cpu", "1", "-benchmem", "-count", count, "./internal/deliver"}},
		{"./internal/enqueue", []string{"test", "-run", "^$", "-bench", "EnqueuePublish|RawAsyncPublish", "-benchtime",
			strconv.Itoa(sc.enqueueN) + "x", "-count", count, "./internal/enqueue"}},
	}
}

func runMicro(ctx context.Context, e *env, s *Section) error {
	dir := e.opts.ModuleDir
	if dir == "" {
		var err error
		if dir, err = findModuleDir(); err != nil {
			return err
		}
	}
	s.Intro = `The Go micro-benchmarks, run by this command with go test (the enqueue ones publish to the NATS above).
BenchmarkCoalesceMergeChunk is the worker's CPU path without I/O (coalesce per account, load versions, merge newest
per field, split into calls of up to 1000 items, raise versions; one op is one event); BenchmarkMapInsert is the
yardstick (the same events into a plain map). BenchmarkEnqueuePublish runs the whole enqueue command on a file;
BenchmarkRawAsyncPublish publishes the same payloads with plain jetstream PublishMsgAsync.`
	var raw strings.Builder
	var errs []error
	results := map[string][]map[string]float64{} // benchmark name → runs → unit → value
	for _, r := range microRuns(e.sc) {
		if _, err := os.Stat(filepath.Join(dir, r.pkg)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.pkg, err))
			continue
		}
		cmd := exec.CommandContext(ctx, "go", r.args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "FRIENDSYNC_TEST_NATS_URL="+e.opts.NATSURL)
		out, err := cmd.CombinedOutput()
		fmt.Fprintf(&raw, "$ go %s\n", strings.Join(quoteArgs(r.args), " "))
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "Benchmark") || strings.HasPrefix(line, "cpu:") || strings.HasPrefix(line, "FAIL") ||
				strings.HasPrefix(line, "ok") || strings.Contains(line, "_test.go") {
				raw.WriteString(line + "\n")
			}
			if name, units, ok := parseBenchLine(line); ok {
				results[name] = append(results[name], units)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("go %s: %w", strings.Join(r.args, " "), err))
		}
	}
	s.Raw = raw.String()
	ratio := func(a, b, unit string) (float64, bool) {
		x, y := mean(results[a], unit), mean(results[b], unit)
		return x / y, x > 0 && y > 0
	}
	tbl := Table{Header: []string{"comparison", "unit", "ratio (mean of the runs)"}}
	for _, c := range []struct{ a, b, unit string }{
		{"BenchmarkCoalesceMergeChunk/DeliverAppend", "BenchmarkMapInsert", "events/cpu-s"},
		{"BenchmarkCoalesceMergeChunk/Deliver", "BenchmarkMapInsert", "events/cpu-s"},
		{"BenchmarkEnqueuePublish", "BenchmarkRawAsyncPublish", "events/s"},
		{"BenchmarkEnqueuePublish", "BenchmarkRawAsyncPublish", "cpu-ns/op"}, // reported by newer versions of the enqueue benchmarks
	} {
		if r, ok := ratio(c.a, c.b, c.unit); ok {
			tbl.Rows = append(tbl.Rows, []string{strings.TrimPrefix(c.a, "Benchmark") + " ÷ " + strings.TrimPrefix(c.b, "Benchmark"), c.unit, f3(r)})
		}
	}
	if len(tbl.Rows) > 0 {
		s.Tables = append(s.Tables, tbl)
	}
	return errors.Join(errs...)
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, "^$|* ") {
			a = "'" + a + "'"
		}
		out[i] = a
	}
	return out
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// parseBenchLine reads "BenchmarkX-2  1000  123 ns/op  4.5 events/s …".
func parseBenchLine(line string) (string, map[string]float64, bool) {
	m := benchLine.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil {
		return "", nil, false
	}
	f := strings.Fields(m[2])
	units := map[string]float64{}
	for i := 0; i+1 < len(f); i += 2 {
		if v, err := strconv.ParseFloat(f[i], 64); err == nil {
			units[f[i+1]] = v
		}
	}
	return m[1], units, len(units) > 0
}

func mean(runs []map[string]float64, unit string) float64 {
	sum, n := 0.0, 0
	for _, r := range runs {
		if v, ok := r[unit]; ok {
			sum += v
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}
