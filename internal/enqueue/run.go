package enqueue

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/config"
)

// Exit codes of Run.
const (
	ExitOK          = 0
	ExitInvalid     = 1   // invalid input; the bad lines are reported
	ExitUsage       = 2   // bad flags, unreadable input or profiles
	ExitNATS        = 3   // NATS unreachable, a stream or bucket missing
	ExitPublish     = 4   // a line could not be published
	ExitInterrupted = 130 // interrupted; acks flushed, checkpoint written
)

// DefaultNATSURL is the embedded worker's NATS address.
const DefaultNATSURL = "nats://127.0.0.1:4223"

// exitError carries an exit code with the message printed for it.
type exitError struct {
	code  int
	err   error
	quiet bool // already printed (flag errors print themselves)
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func fail(code int, format string, args ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, args...)}
}

// env is what a run reads and writes besides its flags; tests add hooks.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	hooks  hooks
}

// hooks let in-package tests stop a run the hard way.
type hooks struct {
	// afterAck runs after each acknowledged line with the count so far;
	// returning true abandons the run at once, like a SIGKILL: no drain,
	// no final checkpoint.
	afterAck func(acked int64) (kill bool)
	// cacheBytes overrides the budget of messages kept between the passes.
	cacheBytes int
	// phase reports how long each pass took ("validate", "publish").
	phase func(name string, d time.Duration)
}

// Run executes the enqueue command line (args without the program name)
// and returns the process exit code. It prints errors, never panics on
// input, and never prints a secret.
func Run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	return run(ctx, args, &env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr})
}

func run(ctx context.Context, args []string, e *env) int {
	err := dispatch(ctx, args, e)
	if err == nil {
		return ExitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		ee = &exitError{code: ExitPublish, err: err}
	}
	if !ee.quiet {
		fmt.Fprintln(e.stderr, "enqueue: "+ee.err.Error())
	}
	return ee.code
}

func dispatch(ctx context.Context, args []string, e *env) error {
	if len(args) > 0 {
		switch args[0] {
		case "publish":
			return runPublish(ctx, args[1:], e)
		case "dlq":
			return runDLQ(ctx, args[1:], e)
		case "help", "-h", "-help", "--help":
			fmt.Fprint(e.stdout, usage)
			return nil
		}
	}
	return runPublish(ctx, args, e)
}

const usage = `enqueue publishes friend-update events to friendsync in bulk, and inspects and replays dead letters.

  enqueue [publish] [flags] [FILE|-]    validate every line, then publish (see enqueue publish -h)
  enqueue dlq list [flags]              list dead letters
  enqueue dlq replay [flags]            republish dead letters

Exit codes: 0 ok, 1 invalid input, 2 usage, 3 NATS unreachable or a stream missing,
4 publish failures, 130 interrupted (acks flushed, checkpoint written).
`

// common are the connection flags of every subcommand.
type common struct {
	natsURL  string
	name     string
	profiles string
	creds    string
	ca       string
	cert     string
	key      string
	timeout  time.Duration

	envs   []envDefault
	getenv func(string) string
}

// register defines the flags. Their environment variables are read in
// resolve, after parsing, so that -h never prints a value taken from the
// environment (a URL may hold a password).
func (c *common) register(fs *flag.FlagSet, getenv func(string) string) {
	c.envs = nil
	str := func(p *string, name, envName, def, usage string) {
		fs.StringVar(p, name, "", usage+" (env "+envName+def+")")
		c.envs = append(c.envs, envDefault{p, envName, strings.TrimPrefix(def, ", default ")})
	}
	str(&c.natsURL, "nats-url", "FRIENDSYNC_NATS_URL", ", default "+DefaultNATSURL, "NATS URL; the embedded worker listens on "+DefaultNATSURL)
	str(&c.name, "name", "FRIENDSYNC_NAME", ", default "+event.DefaultLayout.Base, "layout base name: streams, subjects, buckets")
	str(&c.creds, "nats-creds", "FRIENDSYNC_NATS_CREDS", "", "NATS .creds file")
	str(&c.ca, "nats-ca", "FRIENDSYNC_NATS_CA", "", "CA file for NATS TLS")
	str(&c.cert, "nats-cert", "FRIENDSYNC_NATS_CERT", "", "client certificate for NATS TLS")
	str(&c.key, "nats-key", "FRIENDSYNC_NATS_KEY", "", "client key for NATS TLS")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "timeout of one NATS request or publish ack")
	c.getenv = getenv
}

type envDefault struct {
	p        *string
	env, def string
}

// resolve fills the flags left empty from the environment, then the
// defaults. Call it right after parsing.
func (c *common) resolve() {
	for _, d := range c.envs {
		if *d.p == "" {
			*d.p = c.getenv(d.env)
		}
		if *d.p == "" {
			*d.p = d.def
		}
	}
}

func (c *common) layout() (event.Layout, error) {
	for _, r := range c.name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return event.Layout{}, fail(ExitUsage, "-name %q: use lowercase letters, digits, '_' and '-'", c.name)
		}
	}
	if c.name == "" {
		return event.Layout{}, fail(ExitUsage, "-name is empty")
	}
	if c.timeout <= 0 {
		return event.Layout{}, fail(ExitUsage, "-timeout must be positive")
	}
	return event.Layout{Base: c.name}, nil
}

// connect dials NATS; failures are ExitNATS with the URL's credentials
// masked.
func (c *common) connect() (*nats.Conn, error) {
	opts := []nats.Option{nats.Name("friendsync-enqueue"), nats.Timeout(c.timeout)}
	if c.creds != "" {
		opts = append(opts, nats.UserCredentials(c.creds))
	}
	if c.ca != "" {
		opts = append(opts, nats.RootCAs(c.ca))
	}
	if c.cert != "" || c.key != "" {
		if c.cert == "" || c.key == "" {
			return nil, fail(ExitUsage, "-nats-cert and -nats-key go together")
		}
		opts = append(opts, nats.ClientCert(c.cert, c.key))
	}
	nc, err := nats.Connect(c.natsURL, opts...)
	if err != nil {
		return nil, fail(ExitNATS, "cannot reach NATS at %s: %v (is a worker or nats-server running? set -nats-url or FRIENDSYNC_NATS_URL)",
			redactURL(c.natsURL), err)
	}
	return nc, nil
}

// openStream looks a stream up (the DLQ), or explains that a worker
// creates it. The partition streams are checked by openPartitions.
func openStream(ctx context.Context, js jetstream.JetStream, name string, timeout time.Duration) (jetstream.Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, missingStream(name)
	}
	if err != nil {
		return nil, fail(ExitNATS, "stream %s: %w", name, err)
	}
	return s, nil
}

// redactURL masks the user information of every URL in a comma-separated
// list: a user name alone may be a token.
func redactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			if strings.Contains(p, "@") {
				parts[i] = "(unparsable URL with credentials)"
			}
			continue
		}
		masked := u.User != nil
		u.User = nil
		parts[i] = u.String()
		if masked {
			if scheme, rest, ok := strings.Cut(parts[i], "://"); ok {
				parts[i] = scheme + "://***@" + rest
			} else {
				parts[i] = "***@" + parts[i]
			}
		}
	}
	return strings.Join(parts, ",")
}

// loadRules returns the validation rules per app: from the profiles file,
// and in a dry run also from --vendor flags.
func loadRules(c *common, vendors map[string]event.Rules, dryRun bool, getenv func(string) string) (map[string]event.Rules, error) {
	rules := map[string]event.Rules{}
	if c.profiles != "" {
		// enqueue needs only each app's vendor, never a credential.
		r, err := config.LoadRules(c.profiles)
		if err != nil {
			return nil, fail(ExitUsage, "%v", err)
		}
		rules = r
	}
	if len(vendors) > 0 && !dryRun {
		return nil, fail(ExitUsage, "--vendor is for --dry-run only; publishing reads each app's vendor from --profiles (FRIENDSYNC_PROFILES)")
	}
	for app, r := range vendors {
		rules[app] = r
	}
	if len(rules) == 0 {
		if dryRun {
			return nil, fail(ExitUsage, "--dry-run needs each app's vendor: --profiles FILE or --vendor app=tencent|volc|volc+alias|zego")
		}
		return nil, fail(ExitUsage, "--profiles (or FRIENDSYNC_PROFILES) is required: validation needs each app's vendor")
	}
	return rules, nil
}

// vendorFlag collects --vendor app=vendor.
type vendorFlag map[string]event.Rules

func (v vendorFlag) String() string { return "" }

func (v vendorFlag) Set(s string) error {
	app, kind, ok := strings.Cut(s, "=")
	if !ok || app == "" {
		return errors.New("want app=tencent|volc|volc+alias|zego")
	}
	r := event.Rules{Vendor: event.Vendor(kind)}
	if kind == "volc+alias" {
		r = event.Rules{Vendor: event.Volc, VolcAlias: true}
	}
	if !r.Vendor.Valid() {
		return fmt.Errorf("vendor %q: want tencent, volc, volc+alias or zego", kind)
	}
	v[app] = r
	return nil
}

// parseArgs parses flags and positional arguments in any order ("--"
// ends the flags).
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func newFlagSet(name string, e *env, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprint(e.stderr, help)
		fmt.Fprintln(e.stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	return fs
}

// usageErr turns a flag error into ExitUsage (help stays help).
func usageErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &exitError{code: ExitUsage, err: err, quiet: true}
}
