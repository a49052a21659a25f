package worker

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startEmbeddedNATS runs an in-process nats-server with JetStream on addr,
// storing its files in dataDir: the default when no NATS URL is set, so
// `go run ./cmd/worker` needs nothing else and enqueue can still publish
// to it over TCP.
func startEmbeddedNATS(addr, dataDir string, logger *slog.Logger) (*server.Server, error) {
	host, portS, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("worker: embedded nats address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portS)
	if err != nil {
		return nil, fmt.Errorf("worker: embedded nats port %q: %w", portS, err)
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("worker: embedded nats data dir: %w", err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("worker: embedded nats data dir: %w", err)
	}
	s, err := server.NewServer(&server.Options{
		ServerName: "friendsync-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   abs,
		NoLog:      true,
		NoSigs:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("worker: embedded nats: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("worker: embedded nats on %s did not start (is the port taken?)", addr)
	}
	logger.Info("embedded nats-server started", slog.String("addr", addr), slog.String("data_dir", abs))
	return s, nil
}
