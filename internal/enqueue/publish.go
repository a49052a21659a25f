package enqueue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/term"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/producer"
)

const publishHelp = `usage: enqueue [publish] [flags] [FILE|-]

Publishes one friend-update event per input line to the friendsync queue
(bulk lane by default): each event goes to the stream of its partition,
<STREAM>_P<p> (FRIENDSYNC_P0..P31 with the default 32 partitions), which a
worker creates. Every line is validated for its app's vendor BEFORE
anything is published: by default one bad line aborts the run and nothing is
published; --skip-invalid publishes the good lines and writes the bad ones
to a reject file.

Input (format from the extension .csv, .ndjson, .jsonl or --format; stdin
is NDJSON unless --format csv):
  NDJSON  one event object per line, the contract of docs/CONTRACT.md:
          {"app":"demo","from":"alice","to":"bob","remark":"Bobby","ts":1714000000000000000}
          Blank lines are skipped. An "id" is kept in the payload.
  CSV     a header row naming the columns, in any order: app, from, to
          (required), remark, groups, attrs, ts, id (optional).
          An empty cell leaves the field unchanged.
          remark  the text; the cell "" (two quote characters, written
                  """""" in the file) clears the remark
          groups  names separated by |; the cell [] clears the groups
          attrs   key=value pairs separated by ;  (key= or key="" clears
                  that attribute)
          ts      Unix nanoseconds or RFC 3339
          In groups and attrs, \| \; \= and \\ stand for the character.

Versions: a row's ts is its version. A row without one gets --as-of, else
the input file's modification time (stdin: the start of the run), so a
backfilled value never overwrites a newer live one. A ts before 2001 (in
nanoseconds) or more than a day ahead is rejected.

Idempotence: line N is published with Nats-Msg-Id enqueue/<identity>/N,
where identity is the first 16 hex digits of the SHA-256 of the input, so a
re-run of the same input within the stream's duplicates window (30 min) is
dropped by the stream (a line always maps to the same partition stream).
--resume continues after the last checkpoint (<input>.enqueue-state,
written atomically every --checkpoint-every acks).

The run pauses while any partition stream is more than half full (each
holds 1/P of the queue's limits, shared with live traffic, and rejects
publishes beyond them) and resumes when it drains.
`

type publishOptions struct {
	common
	format          string
	skipInvalid     bool
	rejectFile      string
	resume          bool
	stateFile       string
	lane            string
	asOf            string
	rate            float64
	maxPending      int
	retries         int
	checkpointEvery int
	dryRun          bool
	progress        string
	maxErrors       int
	vendors         vendorFlag
}

func runPublish(ctx context.Context, args []string, e *env) error {
	o := publishOptions{vendors: vendorFlag{}}
	fs := newFlagSet("publish", e, publishHelp)
	o.common.register(fs, e.getenv)
	o.common.envs = append(o.common.envs, envDefault{&o.profiles, "FRIENDSYNC_PROFILES", ""})
	fs.StringVar(&o.profiles, "profiles", "", "vendor profiles YAML; required to publish (env FRIENDSYNC_PROFILES)")
	fs.Var(o.vendors, "vendor", "app=tencent|volc|volc+alias|zego: an app's vendor, for --dry-run without profiles (repeatable)")
	fs.StringVar(&o.format, "format", "auto", "input format: auto, ndjson or csv")
	fs.BoolVar(&o.skipInvalid, "skip-invalid", false, "publish the valid lines and write invalid ones to --reject-file")
	fs.StringVar(&o.rejectFile, "reject-file", "", "where --skip-invalid writes bad lines as NDJSON {line, reason, text} (default <input>.rejects)")
	fs.BoolVar(&o.resume, "resume", false, "skip the lines the checkpoint records as acknowledged")
	fs.StringVar(&o.stateFile, "state-file", "", "checkpoint file (default <input>.enqueue-state; stdin: none unless set)")
	fs.IntVar(&o.checkpointEvery, "checkpoint-every", 1000, "write the checkpoint every N acks (and at least every 2 s)")
	fs.StringVar(&o.lane, "lane", string(event.LaneBulk), "lane: bulk or live")
	fs.StringVar(&o.asOf, "as-of", "", "RFC 3339 version for rows without ts (default: the file's modification time)")
	fs.Float64Var(&o.rate, "rate", 0, "events per second (0: as fast as the stream acknowledges)")
	fs.IntVar(&o.maxPending, "max-pending", 1024, "publishes in flight awaiting their ack")
	fs.IntVar(&o.retries, "retries", 5, "retries of a line whose publish failed, with backoff, before the run fails")
	fs.BoolVar(&o.dryRun, "dry-run", false, "validate and count; publish nothing (no NATS needed)")
	fs.StringVar(&o.progress, "progress", progressAuto, "progress display: auto, bar, plain or off")
	fs.IntVar(&o.maxErrors, "max-errors", 20, "invalid lines printed before counting the rest")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageErr(err)
	}
	o.common.resolve()
	if len(pos) > 1 {
		return fail(ExitUsage, "one input at a time (got %d: %s)", len(pos), strings.Join(pos, " "))
	}
	r := &publishRun{o: o, e: e, input: "-", cacheBytes: defaultCacheBytes}
	if e.hooks.cacheBytes > 0 {
		r.cacheBytes = e.hooks.cacheBytes
	}
	if len(pos) == 1 {
		r.input = pos[0]
	}
	if err := r.setup(); err != nil {
		return err
	}
	return r.run(ctx)
}

// publishRun is one publish invocation.
type publishRun struct {
	o      publishOptions
	e      *env
	input  string // path or "-"
	stdin  bool
	format string
	layout event.Layout
	lane   event.Lane
	chk    checker

	nc   *nats.Conn
	js   jetstream.JetStream
	prod *producer.Producer
	// partitions is P; streams are the partition streams' infos at
	// connect, in partition order.
	partitions int
	streams    []*jetstream.StreamInfo

	cnt  counters
	prog *progress

	cacheBytes int // budget of the arena; tests lower it
}

func (r *publishRun) setup() error {
	o := &r.o
	var err error
	if r.layout, err = o.layout(); err != nil {
		return err
	}
	r.lane = event.Lane(o.lane)
	switch {
	case !r.lane.Valid():
		return fail(ExitUsage, "--lane %q: want bulk or live", o.lane)
	case o.maxPending < 1:
		return fail(ExitUsage, "--max-pending must be at least 1")
	case o.rate < 0 || o.retries < 0 || o.maxErrors < 0:
		return fail(ExitUsage, "--rate, --retries and --max-errors must be ≥ 0")
	case o.checkpointEvery < 1:
		return fail(ExitUsage, "--checkpoint-every must be at least 1")
	case o.progress != progressAuto && o.progress != progressBar && o.progress != progressPlain && o.progress != progressOff:
		return fail(ExitUsage, "--progress %q: want auto, bar, plain or off", o.progress)
	}
	r.stdin = r.input == "-"
	if r.format, err = detectFormat(o.format, r.input); err != nil {
		return fail(ExitUsage, "%v", err)
	}
	if !r.stdin {
		if o.stateFile == "" {
			o.stateFile = r.input + ".enqueue-state"
		}
		if o.rejectFile == "" {
			o.rejectFile = r.input + ".rejects"
		}
	} else {
		if o.resume && o.stateFile == "" {
			return fail(ExitUsage, "--resume with stdin needs --state-file (or pass the input as a file)")
		}
		if o.rejectFile == "" {
			o.rejectFile = "enqueue-stdin.rejects"
		}
	}
	rules, err := loadRules(&o.common, o.vendors, o.dryRun, r.e.getenv)
	if err != nil {
		return err
	}
	r.chk = checker{rules: rules, now: time.Now()}
	if o.asOf != "" {
		t, err := time.Parse(time.RFC3339Nano, o.asOf)
		if err != nil {
			return fail(ExitUsage, "--as-of %q: want RFC 3339, such as 2024-05-01T12:00:00Z", o.asOf)
		}
		if t.After(r.chk.now.Add(maxFutureTS)) || t.UnixNano() < minTS {
			return fail(ExitUsage, "--as-of %s is out of range (2001 to a day from now)", o.asOf)
		}
		r.chk.asOf = t.UnixNano()
	}
	return nil
}

func (r *publishRun) name() string {
	if r.stdin {
		return "stdin"
	}
	return r.input
}

func (r *publishRun) run(ctx context.Context) error {
	o := &r.o
	start := time.Now()
	// Open the input first: a missing file is a usage error even when NATS
	// is down. Stdin is copied to a temporary file, hashed on the way.
	var (
		f    *os.File
		stat os.FileInfo
		id   string
		err  error
	)
	if r.stdin {
		if f, ok := r.e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return fail(ExitUsage, "no input: name a FILE, or pipe NDJSON (or CSV with --format csv) into stdin; see enqueue publish -h")
		}
		if r.chk.asOf == 0 {
			r.chk.asOf = r.chk.now.UnixNano()
		}
		if f, err = os.CreateTemp("", "enqueue-stdin-*"); err != nil {
			return fail(ExitUsage, "buffer stdin: %v", err)
		}
		defer func() { f.Close(); os.Remove(f.Name()) }()
		if id, err = identity(io.TeeReader(r.e.stdin, f)); err != nil {
			return fail(ExitUsage, "buffer stdin: %v", err)
		}
	} else {
		if f, err = os.Open(r.input); err != nil {
			return fail(ExitUsage, "%v", err)
		}
		defer f.Close()
		if stat, err = f.Stat(); err != nil {
			return fail(ExitUsage, "%v", err)
		}
		if stat.IsDir() {
			return fail(ExitUsage, "%s is a directory", r.input)
		}
		if r.chk.asOf == 0 {
			r.chk.asOf = stat.ModTime().UnixNano()
		}
		if id, err = identity(f); err != nil {
			return fail(ExitUsage, "read %s: %v", r.input, err)
		}
	}
	// unchanged checks that the file is the one that was hashed; rewind
	// also positions it at its start.
	unchanged := func() error {
		if stat != nil {
			now, err := f.Stat()
			if err != nil || now.Size() != stat.Size() || !now.ModTime().Equal(stat.ModTime()) {
				return fail(ExitInvalid, "%s changed while enqueue was reading it; nothing more was published", r.input)
			}
		}
		return nil
	}
	rewind := func() error {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fail(ExitUsage, "rewind %s: %v", r.name(), err)
		}
		return unchanged()
	}

	if !o.dryRun {
		if err := r.connect(ctx); err != nil {
			return err
		}
		defer r.nc.Close()
	}

	var cp *checkpoint
	if o.stateFile != "" && !o.dryRun || o.resume {
		if cp, err = loadCheckpoint(o.stateFile); err != nil {
			return fail(ExitUsage, "%v", err)
		}
		switch {
		case o.resume && cp == nil:
			fmt.Fprintf(r.e.stderr, "no checkpoint at %s: starting at line 1\n", o.stateFile)
		case !o.resume && cp != nil:
			fmt.Fprintf(r.e.stderr, "note: %s is left from an earlier run (acknowledged up to line %d); starting over — "+
				"--resume continues from it (the stream drops lines re-sent within its duplicates window)\n", o.stateFile, cp.Line)
			cp = nil
		case cp != nil && cp.Identity != id:
			return fail(ExitUsage, "checkpoint %s is for other content (identity %s; the input is now %s): the input changed; "+
				"remove the checkpoint or run without --resume", o.stateFile, cp.Identity, id)
		}
	}
	resumeLine := 0
	if cp != nil {
		resumeLine = cp.Line
	}

	// Pass 1: validate every line, and prepare the messages.
	if err := rewind(); err != nil {
		return err
	}
	t1 := time.Now()
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	p1, err := r.validate(ctx, f, size, id, resumeLine)
	if err != nil {
		return err
	}
	if err := unchanged(); err != nil {
		return err
	}
	if r.e.hooks.phase != nil {
		r.e.hooks.phase("validate", time.Since(t1))
	}
	if p1.invalid > 0 && !o.skipInvalid {
		return fail(ExitInvalid, "%d of %d lines are invalid; nothing was published (fix them, or use --skip-invalid to publish the %d valid lines and write the rest to a reject file)",
			p1.invalid, p1.invalid+p1.valid, p1.valid)
	}
	if p1.invalid > 0 && !o.dryRun {
		fmt.Fprintf(r.e.stderr, "%d invalid lines written to %s\n", p1.invalid, o.rejectFile)
	}
	if o.dryRun {
		// A dry run does not connect, so P is unknown: FRIENDSYNC_P*.
		fmt.Fprintf(r.e.stdout, "dry run: %s: %d valid, %d invalid lines; would publish %d to streams %s (lane %s, msg ids enqueue/%s/<line>)",
			r.name(), p1.valid, p1.invalid, p1.valid-p1.resumed, streamRange(r.layout, 0), r.lane, id)
		if p1.resumed > 0 {
			fmt.Fprintf(r.e.stdout, ", skipping %d by resume", p1.resumed)
		}
		fmt.Fprintln(r.e.stdout)
		return nil
	}
	if cp != nil && cp.Done {
		fmt.Fprintf(r.e.stderr, "checkpoint %s: %s was published completely already\n", o.stateFile, r.name())
	}

	// Pass 2: publish.
	reopen := func() (source, error) {
		if err := rewind(); err != nil {
			return nil, err
		}
		src, err := newSource(r.format, f)
		if err != nil {
			return nil, fail(ExitInvalid, "%s: %v", r.name(), err)
		}
		return src, nil
	}
	if p1.arena.full {
		fmt.Fprintf(r.e.stderr, "note: the input is larger than the %d MiB kept between the passes; lines after %d are read and encoded again\n",
			r.cacheBytes>>20, p1.arena.through)
	}
	state := &checkpoint{Input: r.name(), Identity: id, Line: resumeLine}
	t2 := time.Now()
	res := r.publish(ctx, p1, state, reopen)
	if r.e.hooks.phase != nil {
		r.e.hooks.phase("publish", time.Since(t2))
	}
	if res.killed {
		return &exitError{code: 137, err: errors.New("killed"), quiet: true}
	}
	return r.finish(p1, res, state, time.Since(start))
}

func (r *publishRun) connect(ctx context.Context) error {
	nc, err := r.o.connect()
	if err != nil {
		return err
	}
	r.nc = nc
	if r.js, err = jetstream.New(nc); err != nil {
		nc.Close()
		return fail(ExitNATS, "jetstream: %v", err)
	}
	if r.partitions, r.streams, err = openPartitions(ctx, r.js, r.layout, r.o.timeout); err != nil {
		nc.Close()
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, r.o.timeout)
	defer cancel()
	r.prod, err = producer.New(pctx, nc, producer.Config{
		Layout: r.layout, Apps: r.chk.rules, MaxPending: r.o.maxPending, Timeout: r.o.timeout,
	})
	if err != nil {
		nc.Close()
		return fail(ExitNATS, "%v", err)
	}
	return nil
}

// finish writes the final checkpoint, prints the summary and picks the
// exit code.
func (r *publishRun) finish(p1 *pass1, res publishResult, state *checkpoint, elapsed time.Duration) error {
	r.prog.stop()
	complete := !res.interrupted && res.failures == 0 && res.inputErr == nil
	if complete {
		state.Line, state.Done = max(state.Line, p1.lastLine), true
	}
	var saveErr error
	if r.o.stateFile != "" {
		saveErr = state.save(r.o.stateFile)
	}
	pub, dup := r.cnt.published.Load(), r.cnt.duplicates.Load()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(pub+dup) / elapsed.Seconds()
	}
	fmt.Fprintf(r.e.stdout, "published %d, duplicates %d, rejected %d, skipped by resume %d, in %s (%.0f events/s)\n",
		pub, dup, p1.invalid, p1.resumed, elapsed.Round(time.Millisecond), rate)
	if saveErr != nil {
		fmt.Fprintf(r.e.stderr, "warning: %v\n", saveErr)
	}
	where := ""
	if r.o.stateFile != "" {
		where = fmt.Sprintf("; checkpoint %s at line %d: re-run with --resume to continue", r.o.stateFile, state.Line)
	}
	switch {
	case res.inputErr != nil:
		return res.inputErr
	case res.interrupted:
		return fail(ExitInterrupted, "interrupted%s", where)
	case res.failures > 0:
		return fail(ExitPublish, "line %d: publish failed: %v (%d lines not acknowledged)%s", res.firstFail, res.failErr, res.failures, where)
	}
	return nil
}
