package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/friendsync/friendsync/internal/vendorsim"
)

type httpServer struct {
	srv *http.Server
	ln  net.Listener
}

// newHTTPServer listens on addr (so a taken port fails the start, not
// later) and serves /metrics, /healthz, /readyz, the status page under
// /ui/, and with the in-process simulator its admin API under /sim/.
func newHTTPServer(addr string, reg *prometheus.Registry, sim *vendorsim.Sim, nc *nats.Conn, ready *atomic.Bool, logger *slog.Logger) (*httpServer, error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case !ready.Load():
			http.Error(w, "not ready: starting or draining", http.StatusServiceUnavailable)
		case !nc.IsConnected():
			http.Error(w, "not ready: nats "+nc.Status().String(), http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(w, "ready")
		}
	})
	if sim != nil {
		mux.Handle("/sim/", http.StripPrefix("/sim", sim.Handler()))
	}
	mountStatus(mux, reg, strings.TrimPrefix(nc.Opts.Name, "friendsync-worker "), logger) // /ui, status.go
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("worker: http listen %s: %w", addr, err)
	}
	return &httpServer{
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
			ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)},
		ln: ln,
	}, nil
}

// serve runs until ctx ends, then shuts down gracefully.
func (h *httpServer) serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- h.srv.Serve(h.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("worker: http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("worker: http shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("worker: http: %w", err)
	}
	return nil
}

// registerPipelineMetrics exports the coalescers' load as gauges read at
// scrape time.
func registerPipelineMetrics(reg prometheus.Registerer, p *pipeline) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "friendsync_coalesce_buffered_events",
			Help: "Events waiting in coalescing buffers for their account's next batch.",
		}, func() float64 { return float64(p.stats().Buffered) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "friendsync_coalesce_keys",
			Help: "Accounts with buffered or in-flight events.",
		}, func() float64 { return float64(p.stats().Keys) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "friendsync_coalesce_inflight_accounts",
			Help: "Accounts with a batch in flight (at most one each).",
		}, func() float64 { return float64(p.stats().InFlight) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "friendsync_coalesce_holding_accounts",
			Help: "Accounts whose batch is due but held while their partition's intake still hands over a backlog.",
		}, func() float64 { return float64(p.stats().Holding) }),
	)
}
