// Command vendorsim serves the strict vendor simulator (package
// internal/vendorsim) over HTTP: Tencent Cloud Chat friend_update under
// /tencent/, Volcengine UpdateFriend under /volc/, ZEGO ZIM under /zego/,
// and the JSON admin API under /admin/.
//
// With no -credentials file it accepts the public demo credentials
// (vendorsim.Demo*). Logs are JSON on stderr and never hold secrets.
//
//	vendorsim -listen 127.0.0.1:8090 -write-time 5ms \
//	    -faults '{"tencent":{"error_rates":{"30006":0.1}}}' -seed 42
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(2)
	}
}

// credentials is the -credentials file: secrets come from a file, never
// from flags (which other users can read in the process list).
type credentials struct {
	Tencent map[uint64]struct {
		Key   string `json:"key"`
		Admin string `json:"admin"`
	} `json:"tencent"`
	Volc map[string]struct {
		SecretKey string  `json:"secret_key"`
		AppIDs    []int64 `json:"app_ids"`
	} `json:"volc"`
	Zego map[uint32]string `json:"zego"`
}

// run serves until ctx ends; ready, when set, receives the bound address.
func run(ctx context.Context, args []string, stderr io.Writer, ready func(addr string)) error {
	fs := flag.NewFlagSet("vendorsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		listen      = fs.String("listen", "127.0.0.1:8090", "listen address")
		credsFile   = fs.String("credentials", "", `JSON file {"tencent":{"<sdkappid>":{"key","admin"}},"volc":{"<ak>":{"secret_key","app_ids"}},"zego":{"<appid>":"<secret>"}}; default: the demo credentials`)
		writeTime   = fs.Duration("write-time", vendorsim.DefaultWriteTime, "how long applying one call takes (negative: none)")
		tencentQPS  = fs.Int("tencent-qps", vendorsim.DefaultTencentQPS, "friend_update calls/s per SDKAppID (0 or negative: unlimited)")
		zegoQPS     = fs.Int("zego-qps", vendorsim.DefaultZegoQPS, "calls/s per ZEGO AppID and API (0 or negative: unlimited)")
		volcQPS     = fs.Int("volc-qps", 0, "UpdateFriend calls/s per Volcengine access key (0: unlimited)")
		faultsJSON  = fs.String("faults", "", `fault specs per vendor as JSON, or @file: {"tencent":{"error_rates":{"30006":0.2},"http_5xx_rate":0.01,"latency":"20ms","jitter":"10ms","timeout_rate":0.001,"outage_for":"30s"}}`)
		seed        = fs.Uint64("seed", 0, "seed for every fault spec that sets none")
		friendship  = fs.Bool("require-friendship", false, "only pairs added via POST /admin/friends are friends")
		zegoConflct = fs.Int("zego-conflict-code", 0, "answer overlapping ZEGO writes with this Code (e.g. 660000001); 0 counts them only")
		maxFriends  = fs.Int("max-friends", vendorsim.DefaultMaxFriends, "bound on stored friend entries")
		logLevel    = fs.String("log-level", "info", "debug, info, warn or error")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("vendorsim: unexpected arguments %q", fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("vendorsim: -log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg := vendorsim.DemoConfig()
	if *credsFile != "" {
		c, err := loadCredentials(*credsFile)
		if err != nil {
			return err
		}
		cfg.Tencent = map[uint64]vendorsim.TencentApp{}
		for id, app := range c.Tencent {
			cfg.Tencent[id] = vendorsim.TencentApp{Key: app.Key, Admin: app.Admin}
		}
		cfg.Volc = map[string]vendorsim.VolcAccount{}
		for ak, acc := range c.Volc {
			cfg.Volc[ak] = vendorsim.VolcAccount{SecretKey: acc.SecretKey, AppIDs: acc.AppIDs}
		}
		cfg.Zego = c.Zego
	}
	cfg.WriteTime = *writeTime
	if *writeTime == 0 {
		cfg.WriteTime = -1
	}
	cfg.TencentQPS, cfg.ZegoQPS, cfg.VolcQPS = nonZero(*tencentQPS), nonZero(*zegoQPS), *volcQPS
	cfg.RequireFriendship = *friendship
	cfg.ZegoConflictCode = *zegoConflct
	cfg.MaxFriends = *maxFriends
	cfg.Logger = log
	if *faultsJSON != "" {
		faults, err := parseFaults(*faultsJSON)
		if err != nil {
			return err
		}
		for v, spec := range faults {
			if spec.Seed == 0 {
				spec.Seed = *seed
				faults[v] = spec
			}
		}
		cfg.Faults = faults
	}
	sim, err := vendorsim.New(cfg)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("vendorsim: listen: %w", err)
	}
	srv := &http.Server{
		Handler:           sim.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("vendorsim: serving", slog.String("addr", ln.Addr().String()),
		slog.Bool("demo_credentials", *credsFile == ""), slog.String("config", cfg.String()))
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("vendorsim: serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("vendorsim: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Calls hung by a timeout fault wait for their connection to close.
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("vendorsim: serve: %w", err)
	}
	return nil
}

// nonZero maps an explicit 0 QPS flag to "unlimited" (the Config's 0 means
// "documented default").
func nonZero(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

func loadCredentials(path string) (credentials, error) {
	var c credentials
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("vendorsim: credentials: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		// The decoder's message quotes no values, only the position.
		return c, fmt.Errorf("vendorsim: credentials %s: %w", path, err)
	}
	return c, nil
}

func parseFaults(s string) (map[event.Vendor]vendorsim.FaultSpec, error) {
	if name, ok := strings.CutPrefix(s, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("vendorsim: -faults: %w", err)
		}
		s = string(b)
	}
	var m map[event.Vendor]vendorsim.FaultSpec
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("vendorsim: -faults: %w", err)
	}
	return m, nil
}
