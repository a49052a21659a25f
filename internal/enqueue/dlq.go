package enqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
)

const dlqHelp = `usage: enqueue dlq list [--reason R] [--limit N] [--json]
       enqueue dlq replay (--seq A[-B] | --reason R | --all) [--delete] [--dry-run]

list prints the dead letters of stream <STREAM>_DLQ, oldest first: sequence,
time, reason (invalid, vendor, max_deliver), vendor code, app/from/to and
the detail.

replay republishes the selected entries to their original subject (so to
the stream of its partition, <STREAM>_P<p>) with a fresh Nats-Msg-Id
<event id>/replay/<unix-nanos> (so the duplicates window does not drop
them) and their ORIGINAL version: an entry without ts gets the ts of its
Friendsync-Version header, so a replay never overwrites a newer value.
--delete removes each replayed entry once its publish is acknowledged.
`

// dlqEntry is one dead letter as printed by list --json.
type dlqEntry struct {
	Seq           uint64          `json:"seq"`
	Time          time.Time       `json:"time"`
	Subject       string          `json:"subject"`
	Reason        string          `json:"reason"`
	VendorCode    string          `json:"vendor_code,omitempty"`
	VendorMessage string          `json:"vendor_message,omitempty"`
	Detail        string          `json:"detail,omitempty"`
	OrigSubject   string          `json:"orig_subject,omitempty"`
	OrigStream    string          `json:"orig_stream,omitempty"`
	OrigSeq       string          `json:"orig_seq,omitempty"`
	Delivered     string          `json:"delivered,omitempty"`
	Worker        string          `json:"worker,omitempty"`
	Version       string          `json:"version,omitempty"`
	EventID       string          `json:"event_id,omitempty"`
	App           string          `json:"app,omitempty"`
	From          string          `json:"from,omitempty"`
	To            string          `json:"to,omitempty"`
	Event         json.RawMessage `json:"event,omitempty"`   // the payload when it is JSON
	Payload       string          `json:"payload,omitempty"` // the payload when it is not

	data []byte
}

func newDLQEntry(seq uint64, ts time.Time, subject string, h nats.Header, data []byte) dlqEntry {
	e := dlqEntry{
		Seq: seq, Time: ts, Subject: subject,
		Reason:        h.Get(jobs.HdrReason),
		VendorCode:    h.Get(jobs.HdrVendorCode),
		VendorMessage: h.Get(jobs.HdrVendorMessage),
		Detail:        h.Get(jobs.HdrDetail),
		OrigSubject:   h.Get(jobs.HdrOrigSubject),
		OrigStream:    h.Get(jobs.HdrOrigStream),
		OrigSeq:       h.Get(jobs.HdrOrigSeq),
		Delivered:     h.Get(jobs.HdrDelivered),
		Worker:        h.Get(jobs.HdrWorker),
		Version:       h.Get(jobs.HdrVersion),
		EventID:       h.Get(jobs.HdrEventID),
		data:          data,
	}
	if t, err := time.Parse(time.RFC3339Nano, h.Get(jobs.HdrTime)); err == nil {
		e.Time = t
	}
	if e.Reason == "" {
		e.Reason = subject[strings.LastIndexByte(subject, '.')+1:]
	}
	// Loose decoding: an invalid event is exactly what a DLQ holds.
	var who struct{ App, From, To any }
	if json.Valid(data) {
		e.Event = json.RawMessage(data)
		if json.Unmarshal(data, &who) == nil {
			e.App, e.From, e.To = str(who.App), str(who.From), str(who.To)
		}
	} else {
		e.Payload = string(data)
	}
	return e
}

func str(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

func runDLQ(ctx context.Context, args []string, e *env) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, dlqHelp)
		return fail(ExitUsage, "dlq: want list or replay")
	}
	switch args[0] {
	case "list":
		return runDLQList(ctx, args[1:], e)
	case "replay":
		return runDLQReplay(ctx, args[1:], e)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(e.stdout, dlqHelp)
		return nil
	}
	return fail(ExitUsage, "dlq %q: want list or replay", args[0])
}

// selection picks DLQ entries.
type selection struct {
	reason   string
	from, to uint64 // sequence range, inclusive; 0 = open
	limit    int    // 0 = all
}

func parseSeqRange(s string) (from, to uint64, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if from, err = strconv.ParseUint(a, 10, 64); err != nil || from == 0 {
		return 0, 0, fmt.Errorf("--seq %q: want N or A-B (stream sequences ≥ 1)", s)
	}
	to = from
	if isRange {
		if to, err = strconv.ParseUint(b, 10, 64); err != nil || to < from {
			return 0, 0, fmt.Errorf("--seq %q: want A-B with A ≤ B", s)
		}
	}
	return from, to, nil
}

// checkReason rejects a reason that is not one subject token.
func checkReason(r string) error {
	if strings.ContainsAny(r, ".*> \t") {
		return fail(ExitUsage, "--reason %q: want one word such as %s, %s or %s", r, jobs.ReasonInvalid, jobs.ReasonVendor, jobs.ReasonMaxDeliver)
	}
	return nil
}

// dlqConn connects and opens the DLQ stream.
func dlqConn(ctx context.Context, c *common) (*nats.Conn, jetstream.JetStream, jetstream.Stream, event.Layout, error) {
	l, err := c.layout()
	if err != nil {
		return nil, nil, nil, l, err
	}
	nc, err := c.connect()
	if err != nil {
		return nil, nil, nil, l, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, nil, l, fail(ExitNATS, "jetstream: %v", err)
	}
	s, err := openStream(ctx, js, jobs.DLQStream(l), c.timeout)
	if err != nil {
		nc.Close()
		return nil, nil, nil, l, err
	}
	return nc, js, s, l, nil
}

// readDLQ reads the selected entries, oldest first, through an ephemeral
// consumer without acks (reading does not change the DLQ).
func readDLQ(ctx context.Context, s jetstream.Stream, l event.Layout, sel selection, timeout time.Duration) ([]dlqEntry, error) {
	ictx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	info, err := s.Info(ictx)
	if err != nil {
		return nil, fail(ExitNATS, "stream %s: %v", s.CachedInfo().Config.Name, err)
	}
	if info.State.Msgs == 0 || sel.from > info.State.LastSeq {
		return nil, nil
	}
	cfg := jetstream.ConsumerConfig{
		AckPolicy:         jetstream.AckNonePolicy,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: time.Minute,
		MemoryStorage:     true,
	}
	if sel.reason != "" {
		cfg.FilterSubject = jobs.DLQSubject(l, sel.reason)
	}
	if sel.from > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, sel.from
	}
	cons, err := s.CreateConsumer(ictx, cfg)
	if err != nil {
		return nil, fail(ExitNATS, "read dead letters: %v", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		_ = s.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	if cons.CachedInfo().NumPending == 0 {
		return nil, nil
	}
	var out []dlqEntry
	for {
		want := 256
		if sel.limit > 0 {
			want = min(want, sel.limit-len(out))
		}
		batch, err := cons.FetchNoWait(want)
		if err != nil {
			return nil, fail(ExitNATS, "read dead letters: %v", err)
		}
		n, done := 0, false
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return nil, fail(ExitNATS, "read dead letters: %v", err)
			}
			seq := md.Sequence.Stream
			if sel.to > 0 && seq > sel.to {
				done = true
				continue
			}
			if !done {
				out = append(out, newDLQEntry(seq, md.Timestamp, m.Subject(), m.Headers(), m.Data()))
			}
			if md.NumPending == 0 || sel.limit > 0 && len(out) >= sel.limit {
				done = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fail(ExitNATS, "read dead letters: %v", err)
		}
		if done || n == 0 || ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
}

func runDLQList(ctx context.Context, args []string, e *env) error {
	var (
		c      common
		sel    selection
		asJSON bool
	)
	fs := newFlagSet("dlq list", e, dlqHelp)
	c.register(fs, e.getenv)
	fs.StringVar(&sel.reason, "reason", "", "only this reason: invalid, vendor or max_deliver")
	fs.IntVar(&sel.limit, "limit", 100, "at most N entries, oldest first (0: all)")
	fs.BoolVar(&asJSON, "json", false, "one JSON object per entry, with all headers and the payload")
	if pos, err := parseArgs(fs, args); err != nil {
		return usageErr(err)
	} else if len(pos) > 0 {
		return fail(ExitUsage, "dlq list: unexpected argument %q", pos[0])
	}
	c.resolve()
	if sel.limit < 0 {
		return fail(ExitUsage, "--limit must be ≥ 0")
	}
	if err := checkReason(sel.reason); err != nil {
		return err
	}
	nc, _, s, l, err := dlqConn(ctx, &c)
	if err != nil {
		return err
	}
	defer nc.Close()
	entries, err := readDLQ(ctx, s, l, sel, c.timeout)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		for i := range entries {
			if err := enc.Encode(&entries[i]); err != nil {
				return err
			}
		}
		return nil
	}
	if len(entries) == 0 {
		fmt.Fprintf(e.stdout, "no dead letters in %s\n", jobs.DLQStream(l))
		return nil
	}
	printEntries(e.stdout, entries)
	return nil
}

func printEntries(w io.Writer, entries []dlqEntry) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tREASON\tCODE\tAPP/FROM/TO\tDETAIL")
	for _, en := range entries {
		detail := en.Detail
		if en.VendorMessage != "" && !strings.Contains(detail, en.VendorMessage) {
			detail = strings.TrimSpace(detail + " (" + en.VendorMessage + ")")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s/%s/%s\t%s\n", en.Seq, en.Time.UTC().Format(time.RFC3339), en.Reason,
			dash(en.VendorCode), dash(en.App), dash(en.From), dash(en.To), oneLine(detail, 120))
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return oneLine(s, 40)
}

// oneLine keeps tabs and newlines out of the table and bounds the width.
func oneLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func runDLQReplay(ctx context.Context, args []string, e *env) error {
	var (
		c             common
		sel           selection
		seqs          string
		all, del, dry bool
	)
	fs := newFlagSet("dlq replay", e, dlqHelp)
	c.register(fs, e.getenv)
	fs.StringVar(&seqs, "seq", "", "entries A or A-B (DLQ stream sequences)")
	fs.StringVar(&sel.reason, "reason", "", "every entry with this reason: invalid, vendor or max_deliver")
	fs.BoolVar(&all, "all", false, "every entry")
	fs.BoolVar(&del, "delete", false, "delete each replayed entry after its publish is acknowledged")
	fs.BoolVar(&dry, "dry-run", false, "print what would be replayed")
	if pos, err := parseArgs(fs, args); err != nil {
		return usageErr(err)
	} else if len(pos) > 0 {
		return fail(ExitUsage, "dlq replay: unexpected argument %q", pos[0])
	}
	c.resolve()
	n := 0
	for _, set := range []bool{seqs != "", sel.reason != "", all} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fail(ExitUsage, "dlq replay: choose exactly one of --seq A[-B], --reason R, --all")
	}
	if err := checkReason(sel.reason); err != nil {
		return err
	}
	if seqs != "" {
		var err error
		if sel.from, sel.to, err = parseSeqRange(seqs); err != nil {
			return fail(ExitUsage, "%v", err)
		}
	}
	nc, js, s, l, err := dlqConn(ctx, &c)
	if err != nil {
		return err
	}
	defer nc.Close()
	partitions, _, err := openPartitions(ctx, js, l, c.timeout)
	if err != nil {
		return err
	}
	entries, err := readDLQ(ctx, s, l, sel, c.timeout)
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		fmt.Fprintln(e.stdout, "nothing to replay")
		return nil
	}
	rp := replayer{js: js, stream: s, layout: l, partitions: partitions, timeout: c.timeout, out: e.stdout, errw: e.stderr}
	var replayed, skipped, failed int
	for _, en := range entries {
		if ctx.Err() != nil {
			return fail(ExitInterrupted, "interrupted after replaying %d entries", replayed)
		}
		m, why := rp.message(en, time.Now())
		if why != "" {
			skipped++
			fmt.Fprintf(e.stderr, "seq %d: not replayed: %s\n", en.Seq, why)
			continue
		}
		if dry {
			fmt.Fprintf(e.stdout, "would replay seq %d → %s (msg id %s)\n", en.Seq, m.Subject, m.Header.Get(jetstream.MsgIDHeader))
			replayed++
			continue
		}
		if err := rp.replay(ctx, en, m, del); err != nil {
			failed++
			fmt.Fprintf(e.stderr, "seq %d: %v\n", en.Seq, err)
			continue
		}
		replayed++
	}
	verb := "replayed"
	if dry {
		verb = "would replay"
	}
	fmt.Fprintf(e.stdout, "%s %d, skipped %d, failed %d\n", verb, replayed, skipped, failed)
	switch {
	case failed > 0:
		return fail(ExitPublish, "%d replays failed", failed)
	case skipped > 0:
		return fail(ExitInvalid, "%d entries could not be replayed", skipped)
	}
	return nil
}

type replayer struct {
	js         jetstream.JetStream
	stream     jetstream.Stream // the DLQ
	layout     event.Layout
	partitions int // P
	timeout    time.Duration
	out, errw  io.Writer
}

// message builds the replay of en, or says why it cannot be replayed.
func (rp *replayer) message(en dlqEntry, now time.Time) (*nats.Msg, string) {
	ev, err := event.Decode(en.data)
	if err != nil {
		return nil, "the payload is not an event (" + reason(err) + "); fix it and publish it anew"
	}
	if ev.TS == 0 {
		v, err := jobs.ParseVersion(en.Version)
		if err != nil || v.TS <= 0 {
			return nil, "no ts and no usable " + jobs.HdrVersion + " header: its version is unknown, and a replay could overwrite a newer value"
		}
		ev.TS = v.TS
	}
	data, err := event.Encode(&ev)
	if err != nil {
		return nil, reason(err)
	}
	// The original subject keeps the entry's lane and partition; its
	// partition's stream is the one that must store the replay. An entry
	// without one (or with one of a partition the queue does not have)
	// goes to the live lane of the partition its app and sender map to.
	subject := en.OrigSubject
	_, p, ok := rp.layout.ParseSubject(subject)
	if !ok || p >= rp.partitions {
		if ev.App == "" || ev.From == "" {
			return nil, "no usable original subject and no app/from to compute one"
		}
		p = event.Partition(ev.App, ev.From, rp.partitions)
		subject = rp.layout.Subject(event.LaneLive, p)
	}
	id := ev.ID
	if id == "" {
		id = en.EventID
	}
	if id == "" {
		id = "dlq-" + strconv.FormatUint(en.Seq, 10)
	}
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, id+"/replay/"+strconv.FormatInt(now.UnixNano(), 10))
	m.Header.Set(jetstream.ExpectedStreamHeader, rp.layout.PartitionStream(p))
	return m, ""
}

// replay publishes m, waits for its ack, and deletes the entry if asked.
func (rp *replayer) replay(ctx context.Context, en dlqEntry, m *nats.Msg, del bool) error {
	pctx, cancel := context.WithTimeout(ctx, rp.timeout)
	defer cancel()
	ack, err := rp.js.PublishMsg(pctx, m)
	if err != nil {
		return fmt.Errorf("replay failed: %w", err)
	}
	note := ""
	if del {
		if err := rp.stream.DeleteMsg(pctx, en.Seq); err != nil {
			note = fmt.Sprintf("; NOT deleted from the DLQ: %v", err)
		} else {
			note = "; deleted from the DLQ"
		}
	}
	fmt.Fprintf(rp.out, "replayed seq %d → %s seq %d (msg id %s)%s\n", en.Seq, m.Subject, ack.Sequence, m.Header.Get(jetstream.MsgIDHeader), note)
	return nil
}
