package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

// Commands that start the machine's services (from the env notes).
const (
	StartNATSCmd  = "start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log"
	StartRedisCmd = `redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log`
)

// NATSURL is the machine's NATS; FRIENDSYNC_TEST_NATS_URL overrides it.
func NATSURL() string {
	if u := os.Getenv("FRIENDSYNC_TEST_NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

// RedisAddr is the machine's Redis; FRIENDSYNC_TEST_REDIS_ADDR overrides it.
func RedisAddr() string {
	if a := os.Getenv("FRIENDSYNC_TEST_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// Unique returns prefix + "_" + a random suffix, safe in stream, consumer,
// bucket and Redis key names.
func Unique(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + strings.ToUpper(hex.EncodeToString(b[:]))
}

// NATS connects to the machine's NATS server and fails the test with the
// start command when it is not running. The connection closes at cleanup.
func NATS(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(NATSURL(), nats.Timeout(3*time.Second), nats.Name(t.Name()))
	if err != nil {
		t.Fatalf("testenv: NATS at %s is not reachable (%v); start it with:\n  %s", NATSURL(), err, StartNATSCmd)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context on the machine's NATS.
func JetStream(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc := NATS(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("testenv: jetstream: %v", err)
	}
	return nc, js
}

// Redis connects to the machine's Redis and fails the test with the start
// command when it is not running. Keys under prefix are deleted at cleanup.
func Redis(t testing.TB, prefix string) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: RedisAddr(), DialTimeout: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("testenv: Redis at %s is not reachable (%v); start it with:\n  %s", RedisAddr(), err, StartRedisCmd)
	}
	t.Cleanup(func() {
		if prefix != "" {
			DeleteKeys(rdb, prefix)
		}
		_ = rdb.Close()
	})
	return rdb
}

// DeleteKeys removes every key that starts with prefix.
func DeleteKeys(rdb *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
}

// DeleteStreams removes the named streams (ignoring missing ones); use it in
// t.Cleanup after creating per-test streams on the shared server.
func DeleteStreams(t testing.TB, js jetstream.JetStream, names ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, n := range names {
		_ = js.DeleteStream(ctx, n)
	}
}

// ServerOptions tune StartNATSServer.
type ServerOptions struct {
	Port     int    // 0: a free port
	StoreDir string // "": t.TempDir()
}

// StartNATSServer starts an in-process nats-server with JetStream on a
// loopback port and shuts it down at cleanup. Use it for fault tests
// (restarts) and to test against a current server version.
func StartNATSServer(t testing.TB, o ServerOptions) *server.Server {
	t.Helper()
	if o.StoreDir == "" {
		o.StoreDir = t.TempDir()
	}
	port := o.Port
	if port == 0 {
		port = FreePort(t)
	}
	opts := &server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  o.StoreDir,
		NoLog:     true,
		NoSigs:    true,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("testenv: nats-server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatalf("testenv: nats-server on port %d not ready", port)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// RedisServer is a throwaway redis-server process for outage tests.
type RedisServer struct {
	Addr string
	port int
	dir  string
	cmd  *exec.Cmd
	t    testing.TB
}

// StartRedisServer starts a redis-server on a free loopback port (the
// redis-server binary must be installed) and stops it at cleanup.
func StartRedisServer(t testing.TB) *RedisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("testenv: redis-server binary not found: install it with: apt-get install -y redis-server")
	}
	r := &RedisServer{port: FreePort(t), dir: t.TempDir(), t: t}
	r.Addr = "127.0.0.1:" + strconv.Itoa(r.port)
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Start (re)starts the server on its port.
func (r *RedisServer) Start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(r.port),
		"--save", "", "--appendonly", "no", "--dir", r.dir,
		"--logfile", filepath.Join(r.dir, "redis.log"))
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("testenv: start redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", r.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("testenv: redis-server on %s did not start", r.Addr)
}

// Stop kills the server (an outage); Start brings it back.
func (r *RedisServer) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// String describes the server for logs.
func (r *RedisServer) String() string { return fmt.Sprintf("redis-server(%s)", r.Addr) }
