package stacktest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/config"
	"github.com/friendsync/friendsync/internal/testenv"
	"github.com/friendsync/friendsync/internal/vendorsim"
	"github.com/friendsync/friendsync/internal/worker"
)

// root is the repository root (tests run in the package directory).
const root = "../.."

// prometheusInstall is how to get promtool and prometheus (Debian).
const prometheusInstall = "apt-get update && apt-get install -y prometheus"

func deployPath(parts ...string) string {
	return filepath.Join(append([]string{root, "deploy"}, parts...)...)
}

// tool finds a binary or fails the test with the install command.
func tool(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/" + name); serr == nil {
			return "/usr/sbin/" + name
		}
		t.Fatalf("%s is not installed; install it with:\n  %s", name, install)
	}
	return p
}

// promtool runs promtool with args in dir and fails the test on an error.
func promtool(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(tool(t, "promtool", prometheusInstall), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// exported starts a worker in process (embedded NATS, simulated vendors,
// no traffic) and returns its registry: exactly what /metrics exports.
func exported(t *testing.T) *prometheus.Registry {
	t.Helper()
	cfg := config.Defaults()
	cfg.WorkerID = "stacktest"
	cfg.Name = strings.ToLower(testenv.Unique("fsdeploy"))
	cfg.EmbeddedNATSAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg.Partitions = 2
	cfg.Profiles = worker.DemoProfiles()
	cfg.Simulated = true
	cfg.ShutdownTimeout = config.Duration(5 * time.Second)
	reg := prometheus.NewRegistry()
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- worker.Run(ctx, cfg, worker.Deps{Registry: reg, Ready: ready}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker.Run = %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop within 30s")
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("worker.Run ended before ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("worker not ready within 30s")
	}
	return reg
}

// registered reports whether reg describes a metric named name (a probe of
// that name registers only when no collector has it; vectors without
// children are not gathered, so Gather cannot tell).
func registered(reg *prometheus.Registry, name string) bool {
	probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "registration probe"})
	if err := reg.Register(probe); err != nil {
		return true
	}
	reg.Unregister(probe)
	return false
}

var (
	metricRef = regexp.MustCompile(`\bfriendsync_[a-z0-9_]+\b`)
	recordRef = regexp.MustCompile(`\bfriendsync:[a-z0-9_:]+`)
	grafVar   = regexp.MustCompile(`\$\{?(\w+)\}?`)
)

// checkNames fails for every friendsync_ metric in expr that reg does not
// export (histogram series by their _bucket, _sum, _count names).
func checkNames(t *testing.T, reg *prometheus.Registry, where, expr string) {
	t.Helper()
	for _, name := range metricRef.FindAllString(expr, -1) {
		ok := registered(reg, name)
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, cut := strings.CutSuffix(name, suffix); !ok && cut {
				ok = registered(reg, base)
			}
		}
		if !ok {
			t.Errorf("%s: %s is not exported by the worker", where, name)
		}
	}
}

type rulesFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record      string            `yaml:"record"`
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type dashboard struct {
	UID    string  `json:"uid"`
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr       string `json:"expr"`
		RefID      string `json:"refId"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// TestDeployQueries checks every PromQL expression the deployment ships:
// the alert rules and the dashboard panels parse (promtool) and name only
// metrics the worker exports.
func TestDeployQueries(t *testing.T) {
	tool(t, "promtool", prometheusInstall)
	reg := exported(t)

	t.Run("alert rules", func(t *testing.T) {
		out := promtool(t, deployPath("prometheus"), "check", "rules", "alerts.yml")
		if !strings.Contains(out, "SUCCESS") {
			t.Fatalf("promtool check rules: %s", out)
		}
		promtool(t, deployPath("prometheus"), "test", "rules", "alerts_test.yml")

		b, err := os.ReadFile(deployPath("prometheus", "alerts.yml"))
		if err != nil {
			t.Fatal(err)
		}
		var rf rulesFile
		if err := yaml.Unmarshal(b, &rf); err != nil {
			t.Fatal(err)
		}
		ops, err := os.ReadFile(filepath.Join(root, "docs", "OPERATIONS.md"))
		if err != nil {
			t.Fatal(err)
		}
		tested, err := os.ReadFile(deployPath("prometheus", "alerts_test.yml"))
		if err != nil {
			t.Fatal(err)
		}
		records := map[string]bool{}
		var alerts []string
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				checkNames(t, reg, "alerts.yml "+r.Record+r.Alert, r.Expr)
				for _, ref := range recordRef.FindAllString(r.Expr, -1) {
					if !records[ref] {
						t.Errorf("alerts.yml %s uses %s, not recorded before it in the file", r.Record+r.Alert, ref)
					}
				}
				if r.Record != "" {
					records[r.Record] = true
					continue
				}
				alerts = append(alerts, r.Alert)
				if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
					t.Errorf("alert %s lacks a severity, summary or description", r.Alert)
				}
				anchor := "docs/OPERATIONS.md#" + strings.ToLower(r.Alert)
				if r.Annotations["runbook"] != anchor {
					t.Errorf("alert %s: runbook %q, want %q", r.Alert, r.Annotations["runbook"], anchor)
				}
				if !strings.Contains(string(ops), "\n### "+r.Alert+"\n") {
					t.Errorf("docs/OPERATIONS.md has no runbook section \"### %s\"", r.Alert)
				}
				if !strings.Contains(string(tested), "alertname: "+r.Alert+"\n") {
					t.Errorf("alerts_test.yml does not test %s", r.Alert)
				}
			}
		}
		// The alerts the operations issue asks for.
		for _, want := range []string{"FriendsyncBacklogGrowing", "FriendsyncDeadLetters", "FriendsyncBudgetSaturated",
			"FriendsyncRateLimitFallback", "FriendsyncPartitionUnowned"} {
			if !slices.Contains(alerts, want) {
				t.Errorf("alerts.yml lacks %s", want)
			}
		}
	})

	t.Run("grafana dashboard", func(t *testing.T) {
		b, err := os.ReadFile(deployPath("grafana", "dashboards", "friendsync.json"))
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("dashboard JSON: %v", err)
		}
		if d.UID == "" || d.Title == "" {
			t.Errorf("dashboard uid %q, title %q", d.UID, d.Title)
		}

		// The datasource the panels name is the provisioned one.
		var ds struct {
			Datasources []struct {
				UID  string `yaml:"uid"`
				Type string `yaml:"type"`
				URL  string `yaml:"url"`
			} `yaml:"datasources"`
		}
		readYAML(t, deployPath("grafana", "provisioning", "datasources", "prometheus.yaml"), &ds)
		if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].UID == "" {
			t.Fatalf("datasources = %+v", ds.Datasources)
		}
		uid := ds.Datasources[0].UID
		var prov struct {
			Providers []struct {
				Type    string `yaml:"type"`
				Options struct {
					Path string `yaml:"path"`
				} `yaml:"options"`
			} `yaml:"providers"`
		}
		readYAML(t, deployPath("grafana", "provisioning", "dashboards", "friendsync.yaml"), &prov)
		if len(prov.Providers) != 1 || prov.Providers[0].Type != "file" || prov.Providers[0].Options.Path == "" {
			t.Fatalf("dashboard providers = %+v", prov.Providers)
		}

		vars := map[string]string{"__rate_interval": "1m", "__interval": "1m", "__range": "1h", "instance": ".*"}
		var rules strings.Builder
		rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
		var titles []string
		queries := 0
		var walk func(ps []panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				walk(p.Panels)
				if p.Type == "row" {
					continue
				}
				titles = append(titles, p.Title)
				if p.Datasource == nil || p.Datasource.UID != uid {
					t.Errorf("panel %q: datasource %+v, want uid %q", p.Title, p.Datasource, uid)
				}
				if len(p.Targets) == 0 {
					t.Errorf("panel %q has no query", p.Title)
				}
				for _, tg := range p.Targets {
					if tg.Datasource != nil && tg.Datasource.UID != uid {
						t.Errorf("panel %q query %s: datasource uid %q, want %q", p.Title, tg.RefID, tg.Datasource.UID, uid)
					}
					expr := grafVar.ReplaceAllStringFunc(tg.Expr, func(m string) string {
						name := grafVar.FindStringSubmatch(m)[1]
						v, ok := vars[name]
						if !ok {
							t.Errorf("panel %q: unknown variable %s", p.Title, m)
						}
						return v
					})
					checkNames(t, reg, fmt.Sprintf("panel %q", p.Title), expr)
					if len(metricRef.FindAllString(expr, -1)) == 0 {
						t.Errorf("panel %q query %s names no friendsync metric: %s", p.Title, tg.RefID, tg.Expr)
					}
					queries++
					fmt.Fprintf(&rules, "      - record: dashboard_panel_%d_%s\n        expr: %s\n", p.ID, tg.RefID, quoteYAML(expr))
				}
			}
		}
		walk(d.Panels)
		if queries == 0 {
			t.Fatal("no queries")
		}
		// promtool parses every expression as PromQL.
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "dashboard.rules.yml"), []byte(rules.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		out := promtool(t, dir, "check", "rules", "dashboard.rules.yml")
		if !strings.Contains(out, fmt.Sprintf("SUCCESS: %d rules found", queries)) {
			t.Fatalf("promtool check rules: %s", out)
		}

		// The same sections as the status page (/ui).
		for _, section := range []string{"Events per second", "Vendor calls", "Backlog", "Calls saved by coalescing",
			"Budget use", "Rate-limit wait", "Limiter state", "End-to-end latency", "Vendor call duration",
			"by class", "Event outcomes", "Dead letters", "Partitions owned", "Partitions without owner"} {
			found := false
			for _, title := range titles {
				found = found || strings.Contains(title, section)
			}
			if !found {
				t.Errorf("no panel titled like %q (titles: %q)", section, titles)
			}
		}
	})
}

func quoteYAML(s string) string {
	b, _ := json.Marshal(s) // a JSON string is a YAML double-quoted scalar
	return string(b)
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestPrometheusConfig(t *testing.T) {
	out := promtool(t, deployPath("prometheus"), "check", "config", "prometheus.yml")
	if !strings.Contains(out, "is valid prometheus config") {
		t.Fatalf("promtool check config: %s", out)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, deployPath("prometheus", "prometheus.yml"), &cfg)
	var workers []string
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName == "friendsync-worker" { // the job FriendsyncWorkerDown watches
			for _, s := range sc.StaticConfigs {
				workers = append(workers, s.Targets...)
			}
		}
	}
	if !slices.Equal(workers, []string{"worker-1:9464", "worker-2:9464"}) {
		t.Errorf("worker targets = %q, want the compose workers", workers)
	}
}

type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Entrypoint  []string          `yaml:"entrypoint"`
		Ports       []string          `yaml:"ports"`
		Volumes     []string          `yaml:"volumes"`
		Environment map[string]string `yaml:"environment"`
		Build       *struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func TestComposeFile(t *testing.T) {
	var c composeFile
	readYAML(t, deployPath("compose.yaml"), &c)
	var names []string
	for n := range c.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	want := []string{"grafana", "nats", "prometheus", "redis", "vendorsim", "worker-1", "worker-2"}
	if !slices.Equal(names, want) {
		t.Fatalf("services = %q, want %q", names, want)
	}
	for name, s := range c.Services {
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s publishes %q: bind to 127.0.0.1", name, p)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(deployPath(src)); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("%s mounts volume %q, which is not declared", name, src)
			}
		}
		if s.Build != nil {
			if _, err := os.Stat(filepath.Join(deployPath(s.Build.Context), s.Build.Dockerfile)); err != nil {
				t.Errorf("%s builds from %s: %v", name, s.Build.Dockerfile, err)
			}
		}
	}
	nats := c.Services["nats"]
	if !slices.Contains(nats.Command, "--jetstream") || !slices.ContainsFunc(nats.Volumes, func(v string) bool { return strings.HasSuffix(v, ":/data") }) {
		t.Errorf("nats: command %q, volumes %q: want JetStream storing in a volume", nats.Command, nats.Volumes)
	}
	for _, w := range []string{"worker-1", "worker-2"} {
		s := c.Services[w]
		env := s.Environment
		if env["FRIENDSYNC_WORKER_ID"] != w || env["FRIENDSYNC_NATS_URL"] != "nats://nats:4222" ||
			!strings.HasPrefix(env["FRIENDSYNC_REDIS_URL"], "redis://redis:6379") || env["FRIENDSYNC_HTTP_ADDR"] != "0.0.0.0:9464" {
			t.Errorf("%s environment = %v", w, env)
		}
		mount := "./profiles.sim.yaml:" + env["FRIENDSYNC_PROFILES"] + ":ro"
		if !slices.Contains(s.Volumes, mount) {
			t.Errorf("%s volumes %q lack %q", w, s.Volumes, mount)
		}
		// Every variable is one the worker reads.
		for k := range env {
			if !configEnv[k] {
				t.Errorf("%s sets %s, which the worker does not read", w, k)
			}
		}
	}
	if ep := c.Services["vendorsim"].Entrypoint; len(ep) == 0 || !strings.Contains(string(mustRead(t, deployPath("Dockerfile"))), "./cmd/vendorsim") ||
		!slices.Contains(ep, "0.0.0.0:8090") {
		t.Errorf("vendorsim entrypoint %q: want the image's vendorsim on :8090", ep)
	}
}

// configEnv are the variables config.Load reads (checked against -h).
var configEnv = func() map[string]bool {
	m := map[string]bool{}
	var usage strings.Builder
	_, _ = config.Load([]string{"-h"}, func(string) string { return "" }, &usage, nil)
	for _, v := range regexp.MustCompile(`FRIENDSYNC_[A-Z_]+`).FindAllString(usage.String(), -1) {
		m[v] = true
	}
	return m
}()

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestProfiles(t *testing.T) {
	t.Run("simulator", func(t *testing.T) {
		ps, err := config.ParseProfiles(mustRead(t, deployPath("profiles.sim.yaml")), func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		demo := worker.DemoProfiles()
		if !slices.Equal(ps.Names(), demo.Names()) {
			t.Fatalf("apps = %q, want the demo apps %q", ps.Names(), demo.Names())
		}
		base := func(v event.Vendor) string { return "http://vendorsim:8090/" + string(v) }
		for _, name := range ps.Names() {
			p, d := ps[name], demo[name]
			if p.Vendor != d.Vendor || p.Budget != d.Budget || p.QuotaID() != d.QuotaID() {
				t.Errorf("%s: vendor %s budget %+v quota %s, want %s %+v %s", name, p.Vendor, p.Budget, p.QuotaID(), d.Vendor, d.Budget, d.QuotaID())
			}
			switch p.Vendor {
			case event.Tencent:
				if p.Tencent.BaseURL != base(p.Vendor) || p.Tencent.SDKAppID != vendorsim.DemoTencentSDKAppID ||
					p.Tencent.Identifier != vendorsim.DemoTencentAdmin || p.TencentKey.Reveal() != vendorsim.DemoTencentKey {
					t.Errorf("%s: tencent profile does not match the simulator's demo app", name)
				}
			case event.Volc:
				if p.Volc.BaseURL != base(p.Vendor) || p.Volc.AccessKey != vendorsim.DemoVolcAccessKey || p.Volc.AppID != vendorsim.DemoVolcAppID ||
					p.VolcSecret.Reveal() != vendorsim.DemoVolcSecretKey || p.Volc.SendAlias != d.Volc.SendAlias {
					t.Errorf("%s: volc profile does not match the simulator's demo account", name)
				}
			case event.Zego:
				if p.Zego.BaseURL != base(p.Vendor) || p.Zego.AppID != vendorsim.DemoZegoAppID || p.ZegoSecret.Reveal() != vendorsim.DemoZegoServerSecret {
					t.Errorf("%s: zego profile does not match the simulator's demo app", name)
				}
			}
		}
	})

	t.Run("example", func(t *testing.T) {
		// Secrets come from files and variables: give it both.
		src := string(mustRead(t, deployPath("profiles.example.yaml")))
		if regexp.MustCompile(`(?m)^\s*value:`).MatchString(src) {
			t.Error("the real-vendor example holds an inline secret value")
		}
		dir := t.TempDir()
		for _, f := range regexp.MustCompile(`file: /run/secrets/(\w+)`).FindAllStringSubmatch(src, -1) {
			if err := os.WriteFile(filepath.Join(dir, f[1]), []byte("secret-"+f[1]+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		src = strings.ReplaceAll(src, "/run/secrets/", dir+"/")
		env := map[string]string{}
		for _, e := range regexp.MustCompile(`env: (\w+)`).FindAllStringSubmatch(src, -1) {
			env[e[1]] = "secret-from-env"
		}
		ps, err := config.ParseProfiles([]byte(src), func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		vendors := map[event.Vendor]bool{}
		for _, p := range ps {
			vendors[p.Vendor] = true
		}
		if len(vendors) != 3 || len(env) == 0 || !strings.Contains(src, dir) {
			t.Errorf("example covers vendors %v, env secrets %v: want all three vendors, file and env secrets", vendors, env)
		}
	})
}

func TestDockerfile(t *testing.T) {
	src := string(mustRead(t, deployPath("Dockerfile")))
	var froms, users []string
	for _, line := range strings.Split(src, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "FROM" {
			froms = append(froms, f[1])
		}
		if len(f) >= 2 && f[0] == "USER" {
			users = append(users, f[1])
		}
	}
	if len(froms) < 2 {
		t.Errorf("FROM %q: want a multi-stage build", froms)
	}
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1], "0") || strings.HasPrefix(users[len(users)-1], "root") {
		t.Errorf("USER %q: want a non-root user in the final stage", users)
	}
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/worker", "./cmd/vendorsim"} {
		if !strings.Contains(src, want) {
			t.Errorf("Dockerfile lacks %q (static binaries of the worker and the simulator)", want)
		}
	}
	// The builder's Go matches go.mod's.
	gomod := string(mustRead(t, filepath.Join(root, "go.mod")))
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(gomod)
	if m == nil || !strings.HasPrefix(froms[0], "golang:"+m[1]) {
		t.Errorf("builder %q does not match go.mod's go %v", froms[0], m)
	}
}
