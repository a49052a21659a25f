package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/config"
)

// latencyMarker starts the remark that identifies an event at the vendor.
const latencyMarker = "lat-"

// latencySkip events at the start are left out (connection warm-up).
const latencySkip = 20

func runLatency(ctx context.Context, e *env, s *Section) error {
	grace := time.Duration(config.Defaults().Grace)
	target := grace + 50*time.Millisecond
	n := int(e.sc.latRate * e.sc.latDuration.Seconds())
	s.Intro = fmt.Sprintf(`One worker (default grace %s, max delay %s) receives %.0f events/s for %s (%d events) over %d
Tencent accounts chosen at random, far below the 180 calls/s budget. Each event's remark is unique; a
RoundTripper in front of the simulator parses every friend_update request body (From_Account, To_Account, the
remark) and records when the call carrying each event arrived. Latency is that arrival minus the moment the event
was handed to the producer (asynchronous publish). The first %d events are left out.`,
		grace, time.Duration(config.Defaults().MaxDelay), e.sc.latRate, e.sc.latDuration, n, e.sc.latAccounts, latencySkip)
	d, err := e.deploy("lat", deployOpts{})
	if err != nil {
		return err
	}
	defer d.cleanup()
	rec := &arrivals{next: d.sim.Transport(), at: map[int]time.Time{}}
	if err := d.start(ctx, 1, func(int) http.RoundTripper { return rec }); err != nil {
		return err
	}
	p, err := d.producer(ctx)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(41, 42))
	published := make([]time.Time, n)
	interval := time.Duration(float64(time.Second) / e.sc.latRate)
	start := time.Now()
	for i := range n {
		if err := sleep(ctx, time.Until(start.Add(time.Duration(i)*interval))); err != nil {
			return err
		}
		ev := event.Event{App: appTencent, From: accountID(event.Tencent, rng.IntN(e.sc.latAccounts)),
			To: friendID(event.Tencent, i), Remark: event.Ptr(latencyMarker + strconv.Itoa(i))}
		m, err := p.Prepare(&ev)
		if err != nil {
			return err
		}
		published[i] = time.Now()
		if _, err := p.PublishMsgAsync(m); err != nil {
			return err
		}
	}
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := p.Flush(fctx); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for rec.count() < n && time.Now().Before(deadline) {
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	if err := d.stop(); err != nil {
		return err
	}
	var lat []time.Duration
	missing := 0
	rec.mu.Lock()
	for i := latencySkip; i < n; i++ {
		at, ok := rec.at[i]
		if !ok {
			missing++
			continue
		}
		lat = append(lat, at.Sub(published[i]))
	}
	calls, items := rec.calls, rec.items
	rec.mu.Unlock()
	slices.Sort(lat)
	if len(lat) == 0 {
		return fmt.Errorf("bench: no event reached the vendor")
	}
	p50, p90, p99 := percentile(lat, 50), percentile(lat, 90), percentile(lat, 99)
	s.Tables = append(s.Tables, Table{Header: []string{"events measured", "not seen at the vendor", "min", "p50", "p90", "p99", "max", "vendor calls", "events per call"},
		Rows: [][]string{{itoa(len(lat)), itoa(missing), ms(lat[0]) + " ms", ms(p50) + " ms", ms(p90) + " ms", ms(p99) + " ms", ms(lat[len(lat)-1]) + " ms",
			itoa(calls), f2(float64(items) / float64(max(1, calls)))}}})
	s.check("publish → vendor call p99", ms(p99)+" ms", fmt.Sprintf("≤ grace + 50 ms = %s ms", ms(target)), p99 <= target, false)
	s.check("publish → vendor call p50", ms(p50)+" ms", "(informative)", true, false)
	s.check("events that reached the vendor", itoa(len(lat)), fmt.Sprintf("%d (all)", n-latencySkip), missing == 0, true)
	invariantChecks(s, "", d.sim.Counters())
	s.Notes = append(s.Notes, "The grace period is a floor by design: an account's first event waits it out in case more follow; the rest is intake (pull), Redis (limiter token, field versions) and scheduling.")
	return nil
}

// arrivals records when a friend_update call carrying each latency event
// arrived, then forwards it.
type arrivals struct {
	next http.RoundTripper

	mu           sync.Mutex
	at           map[int]time.Time
	calls, items int
}

type tencentBody struct {
	From       string `json:"From_Account"`
	UpdateItem []struct {
		To      string `json:"To_Account"`
		SnsItem []struct {
			Tag   string          `json:"Tag"`
			Value json.RawMessage `json:"Value"`
		} `json:"SnsItem"`
	} `json:"UpdateItem"`
}

func (a *arrivals) RoundTrip(r *http.Request) (*http.Response, error) {
	now := time.Now()
	if r.Body != nil && strings.HasSuffix(r.URL.Path, "/friend_update") {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		var body tencentBody
		if json.Unmarshal(b, &body) == nil {
			a.mu.Lock()
			a.calls++
			for _, it := range body.UpdateItem {
				a.items++
				for _, sns := range it.SnsItem {
					var v string
					if sns.Tag != "Tag_SNS_IM_Remark" || json.Unmarshal(sns.Value, &v) != nil {
						continue
					}
					if id, ok := strings.CutPrefix(v, latencyMarker); ok {
						if i, err := strconv.Atoi(id); err == nil {
							if _, seen := a.at[i]; !seen {
								a.at[i] = now
							}
						}
					}
				}
			}
			a.mu.Unlock()
		}
	}
	return a.next.RoundTrip(r)
}

func (a *arrivals) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.at)
}
