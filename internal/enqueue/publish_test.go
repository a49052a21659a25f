package enqueue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/testenv"
)

func identityOf(content string) string {
	sum := sha256.Sum256([]byte(content))
	return hex.EncodeToString(sum[:])[:16]
}

func TestPublishNDJSON(t *testing.T) {
	t.Parallel()
	js, l := setupStream(t, nil)
	dir := t.TempDir()
	content := `{"app":"demo","from":"alice","to":"bob","remark":"Bobby"}

{"id":"keep-me","app":"demo","from":"alice","to":"carol","groups":[],"ts":1714000000000000000}
{"app":"zim","from":"u1","to":"u2","attrs":{"k0":"v","k1":""}}
`
	in := writeFile(t, dir, "in.ndjson", content)
	mtime := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := os.Chtimes(in, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	res := invoke(t, context.Background(), hooks{}, "", nil,
		append(natsArgs(l), "-profiles", profilesFile(t), "-progress", "off", in)...)
	if res.code != ExitOK {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	if !strings.Contains(res.stdout, "published 3, duplicates 0, rejected 0") {
		t.Errorf("summary: %s", res.stdout)
	}
	id := identityOf(content)
	msgs := readAll(t, js, l)
	if len(msgs) != 3 {
		t.Fatalf("%d messages, want 3", len(msgs))
	}
	want := []struct {
		line   int
		id     string
		ts     int64
		remark *string
	}{
		{1, "enqueue/" + id + "/1", mtime.UnixNano(), event.Ptr("Bobby")},
		{3, "keep-me", 1714000000000000000, nil},
		{4, "enqueue/" + id + "/4", mtime.UnixNano(), nil},
	}
	for i, w := range want {
		m := msgs[i]
		if m.msgID != "enqueue/"+id+"/"+strconv.Itoa(w.line) {
			t.Errorf("message %d: Nats-Msg-Id %q, want line %d", i, m.msgID, w.line)
		}
		if m.ev.ID != w.id || m.ev.TS != w.ts {
			t.Errorf("message %d: id %q ts %d, want %q %d", i, m.ev.ID, m.ev.TS, w.id, w.ts)
		}
		if lane, _, ok := l.ParseSubject(m.subject); !ok || lane != event.LaneBulk {
			t.Errorf("message %d on %s, want the bulk lane", i, m.subject)
		}
		if want := l.SubjectFor(&m.ev, event.LaneBulk, testPartitions); m.subject != want {
			t.Errorf("message %d on %s, want %s", i, m.subject, want)
		}
	}
	if g := msgs[1].ev.Groups; g == nil || len(*g) != 0 {
		t.Errorf("groups [] must arrive as a clear, got %v", g)
	}
	if a := msgs[2].ev.Attrs; a["k0"] != "v" || a["k1"] != "" || len(a) != 2 {
		t.Errorf("attrs %v", a)
	}

	// The same file again: every line is a duplicate, nothing new stored.
	res = invoke(t, context.Background(), hooks{}, "", nil,
		append(natsArgs(l), "-profiles", profilesFile(t), "-progress", "off", "-lane", "live", in)...)
	if res.code != ExitOK || !strings.Contains(res.stdout, "published 0, duplicates 3") {
		t.Fatalf("re-run: exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	if n := eventMsgs(t, js, l); n != 3 {
		t.Fatalf("re-run stored %d messages, want 3", n)
	}
}

func TestPublishCSV(t *testing.T) {
	t.Parallel()
	js, l := setupStream(t, nil)
	dir := t.TempDir()
	content := "app,from,to,remark,groups,attrs,ts\n" +
		"demo,alice,bob,Bobby,a|b,k=v;k2=,2024-05-01T00:00:00Z\n" +
		"demo,alice,carol,\"\"\"\"\"\",[],,\n" +
		"demo,alice,dave,,,\"k=\"\"\"\"\",1714000000000000001\n"
	in := writeFile(t, dir, "rows.csv", content)
	res := invoke(t, context.Background(), hooks{}, "", nil,
		append(natsArgs(l), "-profiles", profilesFile(t), "-progress", "off", "-as-of", "2024-04-01T00:00:00Z", in)...)
	if res.code != ExitOK {
		t.Fatalf("exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	msgs := readAll(t, js, l)
	if len(msgs) != 3 {
		t.Fatalf("%d messages", len(msgs))
	}
	id := identityOf(content)
	a, c, d := msgs[0].ev, msgs[1].ev, msgs[2].ev
	if msgs[0].msgID != "enqueue/"+id+"/2" || msgs[2].msgID != "enqueue/"+id+"/4" {
		t.Errorf("msg ids %q %q: CSV lines count the header", msgs[0].msgID, msgs[2].msgID)
	}
	if *a.Remark != "Bobby" || strings.Join(*a.Groups, ",") != "a,b" || a.Attrs["k"] != "v" || a.Attrs["k2"] != "" ||
		a.TS != time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC).UnixNano() {
		t.Errorf("row 2: %+v", a)
	}
	if c.Remark == nil || *c.Remark != "" || c.Groups == nil || len(*c.Groups) != 0 || c.Attrs != nil ||
		c.TS != time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC).UnixNano() {
		t.Errorf("row 3 (clears, as-of ts): %+v", c)
	}
	if d.Remark != nil || d.Groups != nil || d.Attrs["k"] != "" || d.TS != 1714000000000000001 {
		t.Errorf("row 4: %+v", d)
	}
}

// badLines holds valid and invalid lines; the invalid ones are 2, 4, 5, 7.
const badLines = `{"app":"demo","from":"alice","to":"bob","remark":"ok"}
{"app":"demo","from":"alice","to":"bob","remark":"` + "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" + `"}
{"app":"zim","from":"u1","to":"u2","remark":"ok"}
{"app":"zim","from":"u1","to":"u2","groups":["g"]}
not json
{"app":"demo","from":"alice","to":"dave","remark":"ok"}
{"app":"nope","from":"a","to":"b","remark":"r"}
`

func TestInvalidLinesAbortWithNothingPublished(t *testing.T) {
	t.Parallel()
	js, l := setupStream(t, nil)
	in := writeFile(t, t.TempDir(), "bad.ndjson", badLines)
	res := invoke(t, context.Background(), hooks{}, "", nil,
		append(natsArgs(l), "-profiles", profilesFile(t), "-progress", "off", "-max-errors", "3", in)...)
	if res.code != ExitInvalid {
		t.Fatalf("exit %d, want %d: %s", res.code, ExitInvalid, res.stderr)
	}
	for _, want := range []string{
		"line 2: remark: 102 bytes exceeds tencent's",
		"line 4: groups: zego has no friend groups",
		"line 5: invalid JSON:",
		"… and 1 more invalid lines",
		"4 of 7 lines are invalid; nothing was published",
	} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, res.stderr)
		}
	}
	if strings.Contains(res.stderr, "line 7") {
		t.Errorf("printed more than -max-errors lines:\n%s", res.stderr)
	}
	if n := eventMsgs(t, js, l); n != 0 {
		t.Fatalf("%d messages published from an invalid input", n)
	}
}

func TestSkipInvalidWritesRejects(t *testing.T) {
	t.Parallel()
	js, l := setupStream(t, nil)
	dir := t.TempDir()
	in := writeFile(t, dir, "bad.ndjson", badLines)
	res := invoke(t, context.Background(), hooks{}, "", nil,
		append(natsArgs(l), "-profiles", profilesFile(t), "-progress", "off", "-skip-invalid", in)...)
	if res.code != ExitOK {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if !strings.Contains(res.stdout, "published 3, duplicates 0, rejected 4") {
		t.Errorf("summary: %s", res.stdout)
	}
	msgs := readAll(t, js, l)
	var lines []string
	for _, m := range msgs {
		lines = append(lines, m.msgID[strings.LastIndexByte(m.msgID, '/')+1:])
	}
	if got := strings.Join(lines, ","); got != "1,3,6" {
		t.Errorf("published lines %s, want 1,3,6", got)
	}
	b, err := os.ReadFile(in + ".rejects")
	if err != nil {
		t.Fatal(err)
	}
	var rejects []rejectLine
	for _, s := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r rejectLine
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			t.Fatalf("reject line %q: %v", s, err)
		}
		rejects = append(rejects, r)
	}
	want := []struct {
		line   int
		reason string
	}{{2, "remark:"}, {4, "groups:"}, {5, "invalid JSON"}, {7, `app: "nope" has no profile`}}
	if len(rejects) != len(want) {
		t.Fatalf("rejects %+v", rejects)
	}
	for i, w := range want {
		if rejects[i].Line != w.line || !strings.HasPrefix(rejects[i].Reason, w.reason) {
			t.Errorf("reject %d: %+v, want line %d reason %q", i, rejects[i], w.line, w.reason)
		}
	}
	if rejects[2].Text != "not json" {
		t.Errorf("reject text %q", rejects[2].Text)
	}
}

func TestDryRunPublishesNothing(t *testing.T) {
	t.Parallel()
	js, l := setupStream(t, nil)
	dir := t.TempDir()
	in := writeFile(t, dir, "in.ndjson", badLines)
	t.Run("with profiles and NATS", func(t *testing.T) {
		res := invoke(t, context.Background(), hooks{}, "", nil,
			append(natsArgs(l), "-profiles", profilesFile(t), "-dry-run", "-skip-invalid", in)...)
		if res.code != ExitOK || !strings.Contains(res.stdout, "dry run: "+in+": 3 valid, 4 invalid lines; would publish 3 to streams "+l.StreamBase()+"_P* (lane bulk") {
			t.Fatalf("exit %d: %s %s", res.code, res.stdout, res.stderr)
		}
		if _, err := os.Stat(in + ".rejects"); err == nil {
			t.Error("a dry run wrote the reject file")
		}
	})
	t.Run("with vendor flags and no NATS", func(t *testing.T) {
		res := invoke(t, context.Background(), hooks{}, badLines, nil,
			"-nats-url", "nats://127.0.0.1:1", "-vendor", "demo=tencent", "-vendor", "zim=zego", "-vendor", "nope=volc", "-dry-run", "-")
		if res.code != ExitInvalid || !strings.Contains(res.stderr, "line 7: from: volcengine user ids must be decimal") {
			t.Fatalf("exit %d: %s %s", res.code, res.stdout, res.stderr)
		}
	})
	if n := eventMsgs(t, js, l); n != 0 {
		t.Fatalf("a dry run published %d messages", n)
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	_, l := setupStream(t, nil)
	dir := t.TempDir()
	in := writeFile(t, dir, "in.ndjson", `{"app":"demo","from":"a","to":"b","remark":"r"}`+"\n")
	profiles := profilesFile(t)
	dead := "nats://user:s3cret-pass@127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	tests := []struct {
		name string
		args []string
		env  map[string]string
		code int
		want string
	}{
		{"NATS unreachable", []string{"-nats-url", dead, "-profiles", profiles, in}, nil, ExitNATS, "cannot reach NATS at nats://***@127.0.0.1:"},
		{"NATS from the environment", []string{"-profiles", profiles, in}, map[string]string{"FRIENDSYNC_NATS_URL": dead}, ExitNATS, "cannot reach NATS"},
		{"streams missing", []string{"-nats-url", testenv.NATSURL(), "-name", l.Base + "-none", "-profiles", profiles, in}, nil, ExitNATS,
			"stream " + strings.ToUpper(strings.ReplaceAll(l.Base, "-", "_")) + "_NONE_P0 not found: start a worker first"},
		{"no profiles", append(natsArgs(l), in), nil, ExitUsage, "--profiles (or FRIENDSYNC_PROFILES) is required"},
		{"vendor flags without dry run", append(natsArgs(l), "-vendor", "demo=tencent", in), nil, ExitUsage, "--vendor is for --dry-run only"},
		{"missing file", append(natsArgs(l), "-profiles", profiles, dir+"/nope.ndjson"), nil, ExitUsage, "no such file"},
		{"unknown extension", append(natsArgs(l), "-profiles", profiles, dir+"/x.txt"), nil, ExitUsage, "use --format"},
		{"unknown flag", []string{"-bogus"}, nil, ExitUsage, "flag provided but not defined"},
		{"two inputs", append(natsArgs(l), "-profiles", profiles, in, in), nil, ExitUsage, "one input at a time"},
		{"bad lane", append(natsArgs(l), "-profiles", profiles, "-lane", "fast", in), nil, ExitUsage, "--lane"},
		{"resume from stdin without state file", append(natsArgs(l), "-profiles", profiles, "-resume", "-"), nil, ExitUsage, "--state-file"},
		{"bad as-of", append(natsArgs(l), "-profiles", profiles, "-as-of", "yesterday", in), nil, ExitUsage, "--as-of"},
		{"dlq without a subcommand", []string{"dlq"}, nil, ExitUsage, "want list or replay"},
		{"replay without a selection", append([]string{"dlq", "replay"}, natsArgs(l)...), nil, ExitUsage, "exactly one of"},
		{"reason with a dot", append([]string{"dlq", "list", "-reason", "vendor.x"}, natsArgs(l)...), nil, ExitUsage, "want one word"},
		{"help", []string{"help"}, nil, ExitOK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := invoke(t, context.Background(), hooks{}, "", tc.env, tc.args...)
			if res.code != tc.code || !strings.Contains(res.stderr, tc.want) {
				t.Fatalf("exit %d (want %d), stderr %q, want it to contain %q", res.code, tc.code, res.stderr, tc.want)
			}
			if strings.Contains(res.stderr+res.stdout, "s3cret") {
				t.Fatalf("the password was printed: %s", res.stderr)
			}
			if strings.Contains(res.stderr, "goroutine ") {
				t.Fatalf("a stack trace: %s", res.stderr)
			}
		})
	}
}

func TestPublishFromStdinWithStateFile(t *testing.T) {
	t.Parallel()
	js, l := setupStream(t, nil)
	dir := t.TempDir()
	var b strings.Builder
	for i := 1; i <= 50; i++ {
		fmt.Fprintf(&b, `{"app":"demo","from":"u%d","to":"f%d","remark":"r"}`+"\n", i%7, i)
	}
	state := dir + "/stdin.state"
	args := append(natsArgs(l), "-profiles", profilesFile(t), "-progress", "off", "-state-file", state, "-checkpoint-every", "10")
	res := invoke(t, context.Background(), hooks{}, b.String(), nil, append(args, "-")...)
	if res.code != ExitOK || !strings.Contains(res.stdout, "published 50,") {
		t.Fatalf("exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	cp, err := loadCheckpoint(state)
	if err != nil || cp == nil || !cp.Done || cp.Line != 50 || cp.Identity != identityOf(b.String()) {
		t.Fatalf("checkpoint %+v %v", cp, err)
	}
	// Resuming a complete input publishes nothing.
	res = invoke(t, context.Background(), hooks{}, b.String(), nil, append(args, "-resume", "-")...)
	if res.code != ExitOK || !strings.Contains(res.stdout, "published 0, duplicates 0, rejected 0, skipped by resume 50") {
		t.Fatalf("exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	// Other content with the same checkpoint is refused.
	res = invoke(t, context.Background(), hooks{}, b.String()+b.String(), nil, append(args, "-resume", "-")...)
	if res.code != ExitUsage || !strings.Contains(res.stderr, "is for other content") {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if n := eventMsgs(t, js, l); n != 50 {
		t.Fatalf("%d messages, want 50", n)
	}
}

// TestPublishFailureNamesTheLine: every partition stream captures the
// subjects of the next partition, so the stream that would store a line
// is not the one its Nats-Expected-Stream names and the server refuses
// every publish; the run retries, then exits 4 naming the line, and
// nothing is stored in a partition's wrong stream.
func TestPublishFailureNamesTheLine(t *testing.T) {
	t.Parallel()
	js, l := setupStream(t, func(p int, c *jetstream.StreamConfig) {
		// <base>.ev.*.<p> becomes <base>.ev.*.<p+1 mod P>.
		c.Subjects = []string{strings.TrimSuffix(c.Subjects[0], strconv.Itoa(p)) + strconv.Itoa((p+1)%testPartitions)}
	})
	in := writeFile(t, t.TempDir(), "in.ndjson", `{"app":"demo","from":"a","to":"b","remark":"r"}`+"\n")
	res := invoke(t, context.Background(), hooks{}, "", nil,
		append(natsArgs(l), "-profiles", profilesFile(t), "-progress", "off", "-retries", "1", "-timeout", "2s", in)...)
	if res.code != ExitPublish || !strings.Contains(res.stderr, "line 1: publish failed") || !strings.Contains(res.stderr, "retry 1 of 1") ||
		!strings.Contains(res.stderr, "expected stream does not match") {
		t.Fatalf("exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	if n := eventMsgs(t, js, l); n != 0 {
		t.Fatalf("%d messages stored in the wrong partition stream", n)
	}
	cp, err := loadCheckpoint(in + ".enqueue-state")
	if err != nil || cp == nil || cp.Done || cp.Line != 0 {
		t.Fatalf("checkpoint after a failure: %+v %v", cp, err)
	}
}

// TestPartitionStreamsChecked: publish and replay need all P partition
// streams, and name the missing one; the stream of the one-stream layout
// of earlier builds gets a migration hint instead.
func TestPartitionStreamsChecked(t *testing.T) {
	t.Parallel()
	js, l := setupStream(t, nil)
	setupDLQ(t, js, l)
	testenv.DeleteStreams(t, js, l.PartitionStream(5))
	in := writeFile(t, t.TempDir(), "in.ndjson", `{"app":"demo","from":"a","to":"b","remark":"r"}`+"\n")
	want := "stream " + l.PartitionStream(5) + " not found: start a worker first"
	res := invoke(t, context.Background(), hooks{}, "", nil, append(natsArgs(l), "-profiles", profilesFile(t), in)...)
	if res.code != ExitNATS || !strings.Contains(res.stderr, want) {
		t.Fatalf("publish: exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	res = invoke(t, context.Background(), hooks{}, "", nil, append([]string{"dlq", "replay", "-all"}, natsArgs(l)...)...)
	if res.code != ExitNATS || !strings.Contains(res.stderr, want) {
		t.Fatalf("replay: exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	for p := range testPartitions {
		if p != 5 && streamMsgs(t, js, l.PartitionStream(p)) != 0 {
			t.Fatalf("%s holds messages", l.PartitionStream(p))
		}
	}

	old := event.Layout{Base: strings.ToLower(testenv.Unique("enq"))}
	cleanupLayout(t, js, old)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: old.StreamBase(), Subjects: []string{old.Subjects()}, Storage: jetstream.MemoryStorage, Retention: jetstream.WorkQueuePolicy,
	}); err != nil {
		t.Fatal(err)
	}
	res = invoke(t, context.Background(), hooks{}, "", nil, append(natsArgs(old), "-profiles", profilesFile(t), in)...)
	if res.code != ExitNATS || !strings.Contains(res.stderr, "stream "+old.StreamBase()+" (0 messages) is the one-stream layout") {
		t.Fatalf("one-stream layout: exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
}
