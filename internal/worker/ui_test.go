package worker

import (
	"context"
	"flag"
	"io/fs"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "write docs/status.png from TestStatusPageInChromium")

// chromiumInstall is how to get the browser on the CI machines (Debian).
const chromiumInstall = "apt-get update && apt-get install -y chromium chromium-driver"

// chromiumPath finds a Chromium or Chrome binary; a missing browser fails
// the test with the install command.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("chromium is not installed; install it with:\n  %s", chromiumInstall)
	return ""
}

// TestStatusPageInChromium opens /ui of a demo worker in headless Chromium
// and checks that the page fills in every section and that its figures
// move as traffic flows, without reloading.
func TestStatusPageInChromium(t *testing.T) {
	exe := chromiumPath(t)
	w := startDemoWorker(t, 300)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1400),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	text := func(id string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("`+id+`").textContent`))
		if err != nil {
			t.Fatalf("read #%s: %v", id, err)
		}
		return strings.TrimSpace(s)
	}
	number := func(id string) float64 {
		t.Helper()
		s := strings.NewReplacer(",", "", "%", "").Replace(text(id))
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("#%s = %q, not a number", id, text(id))
		}
		return v
	}
	// poll waits until a JS condition holds in the page.
	poll := func(what, js string, within time.Duration) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(within))); err != nil {
			t.Fatalf("page: %s: %v (conn %q)", what, err, text("conn"))
		}
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(w.base+"/ui/?interval=300")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	poll("first figures", `document.getElementById("conn").textContent === "live" &&
		Number(document.getElementById("total-calls").textContent.replace(/,/g, "")) > 0`, 30*time.Second)
	if got := text("worker"); got != w.cfg.WorkerID {
		t.Errorf("#worker = %q, want %q", got, w.cfg.WorkerID)
	}
	received0, calls0, updated0 := number("total-received"), number("total-calls"), text("updated")

	// The same page, polling, shows more events and calls and rates > 0.
	poll("figures move", `Number(document.getElementById("total-received").textContent.replace(/,/g, "")) > `+
		strconv.FormatFloat(received0, 'f', -1, 64)+` &&
		Number(document.getElementById("total-calls").textContent.replace(/,/g, "")) > `+
		strconv.FormatFloat(calls0, 'f', -1, 64)+` &&
		parseFloat(document.getElementById("rate-received").textContent) > 0`, 30*time.Second)
	if text("updated") == updated0 && number("total-received") <= received0 {
		t.Error("the page did not update")
	}

	// Every section has content.
	if v := number("part-owned"); v != float64(w.cfg.Partitions) {
		t.Errorf("partitions owned = %v, want %d", v, w.cfg.Partitions)
	}
	if v := number("coal-saved-pct"); v < 0 || v > 100 {
		t.Errorf("saved = %v%%", v)
	}
	for _, id := range []string{"rate-calls", "rate-items", "coal-items-per-call", "lat-p50", "lat-p99", "backlog-buffered"} {
		if s := text(id); s == "" || s == "–" {
			t.Errorf("#%s is empty (%q)", id, s)
		}
	}
	count := func(js string) int {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return n
	}
	budgetRows := count(`document.querySelectorAll("#budgets tbody tr").length`)
	callRows := count(`document.querySelectorAll("#calls tbody tr").length`)
	deadLetterRows := count(`document.querySelectorAll("#dead-letters tbody tr").length`)
	if budgetRows != 4 || callRows < 4 || deadLetterRows != 3 {
		t.Errorf("rows: budgets %d (want 4), calls %d (want ≥ 4), dead letters %d (want 3)", budgetRows, callRows, deadLetterRows)
	}
	// The sparkline grows a point per poll.
	poll("sparkline grows", `document.querySelector("#spark-throughput polyline").getAttribute("points").split(" ").length >= 3`, 10*time.Second)

	if *updateScreenshot {
		// Let the sparklines fill before the picture for the README.
		time.Sleep(20 * time.Second)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("../../docs/status.png", png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote docs/status.png (%d bytes)", len(png))
	}
}

// TestUIAssetsEmbedded checks that the page needs nothing from outside the
// binary: every asset is embedded, references only relative or same-origin
// paths, and every file the page references exists.
func TestUIAssetsEmbedded(t *testing.T) {
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import|fetch\(\s*["'](https?:)?//`)
	ref := regexp.MustCompile(`(?:src|href)="([^"#?:]+)"`)
	files := map[string]string{}
	err := fs.WalkDir(uiAssets, "ui", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(uiAssets, path)
		files[strings.TrimPrefix(path, "ui/")] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"index.html", "app.js", "style.css"} {
		if _, ok := files[want]; !ok {
			t.Errorf("%s is not embedded", want)
		}
	}
	for name, body := range files {
		if m := external.FindString(body); m != "" {
			t.Errorf("%s loads an external resource: %q", name, m)
		}
	}
	for _, m := range ref.FindAllStringSubmatch(files["index.html"], -1) {
		p := m[1]
		if strings.HasPrefix(p, "/") {
			continue // the worker's own endpoints (/metrics)
		}
		if _, ok := files[p]; !ok && p != "api/stats" {
			t.Errorf("index.html references %q, which is not embedded", p)
		}
	}
}
