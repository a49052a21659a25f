package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/jobs"
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

// PartitionStreams creates, as a worker would but with nothing else, what
// a producer of layout l needs: the meta bucket holding P = partitions
// and the P partition streams (memory work queues with a one-minute
// Duplicates window, subjects PartitionSubjects(p)); DeleteLayout removes
// them at cleanup. Tests of the queue itself use queue.Ensure.
func PartitionStreams(t testing.TB, js jetstream.JetStream, l event.Layout, partitions int) {
	t.Helper()
	PartitionStreamsWith(t, js, l, partitions, nil)
}

// PartitionStreamsWith is PartitionStreams with adjust, if not nil,
// changing each partition stream's configuration before it is created.
func PartitionStreamsWith(t testing.TB, js jetstream.JetStream, l event.Layout, partitions int, adjust func(p int, c *jetstream.StreamConfig)) {
	t.Helper()
	t.Cleanup(func() { DeleteLayout(t, js, l) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: l.MetaBucket(), Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatalf("testenv: meta bucket %s: %v", l.MetaBucket(), err)
	}
	if _, err := kv.Create(ctx, event.PartitionsKey, []byte(strconv.Itoa(partitions))); err != nil {
		t.Fatalf("testenv: %s/%s: %v", l.MetaBucket(), event.PartitionsKey, err)
	}
	for p := range partitions {
		cfg := jetstream.StreamConfig{
			Name: l.PartitionStream(p), Subjects: []string{l.PartitionSubjects(p)}, Storage: jetstream.MemoryStorage,
			Retention: jetstream.WorkQueuePolicy, Duplicates: time.Minute,
		}
		if adjust != nil {
			adjust(p, &cfg)
		}
		if _, err := js.CreateStream(ctx, cfg); err != nil {
			t.Fatalf("testenv: stream %s: %v", l.PartitionStream(p), err)
		}
	}
}

// EventMsgs is the number of messages in l's partition streams 0..P-1.
func EventMsgs(t testing.TB, js jetstream.JetStream, l event.Layout, partitions int) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n uint64
	for p := range partitions {
		s, err := js.Stream(ctx, l.PartitionStream(p))
		if err != nil {
			t.Fatalf("testenv: stream %s: %v", l.PartitionStream(p), err)
		}
		n += s.CachedInfo().State.Msgs
	}
	return n
}

// EventStreams names the streams that capture l's event subjects: its
// partition streams, whatever P is, and a stream of the old one-stream
// layout if a test made one.
func EventStreams(ctx context.Context, js jetstream.JetStream, l event.Layout) ([]string, error) {
	names := js.StreamNames(ctx, jetstream.WithStreamListSubject(l.Subjects()))
	var out []string
	for n := range names.Name() {
		out = append(out, n)
	}
	if err := names.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		return out, fmt.Errorf("list the streams of %s: %w", l.Subjects(), err)
	}
	return out, nil
}

// DeleteLayout removes what a friendsync deployment of layout l keeps in
// JetStream, ignoring what is missing: every stream that captures l's
// event subjects (its partition streams, whatever P was, and a stream of
// the old one-stream layout if a test made one), the dead-letter stream,
// and the meta and lease buckets. Use it in t.Cleanup.
func DeleteLayout(t testing.TB, js jetstream.JetStream, l event.Layout) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	streams, err := EventStreams(ctx, js, l)
	if err != nil {
		t.Logf("testenv: %v", err)
	}
	streams = append(streams, jobs.DLQStream(l))
	for _, n := range streams {
		if err := js.DeleteStream(ctx, n); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Logf("testenv: delete stream %s: %v", n, err)
		}
	}
	for _, b := range []string{l.MetaBucket(), jobs.LeaseBucket(l)} {
		if err := js.DeleteKeyValue(ctx, b); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			t.Logf("testenv: delete bucket %s: %v", b, err)
		}
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
	Addr     string
	port     int
	dir      string
	password string // requirepass; "" for none
	cmd      *exec.Cmd
	t        testing.TB
}

// StartRedisServer starts a redis-server on a free loopback port (the
// redis-server binary must be installed) and stops it at cleanup.
func StartRedisServer(t testing.TB) *RedisServer {
	t.Helper()
	return StartRedisServerWithPassword(t, "")
}

// StartRedisServerWithPassword is StartRedisServer with requirepass
// password (none when ""); URL then carries it.
func StartRedisServerWithPassword(t testing.TB, password string) *RedisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("testenv: redis-server binary not found: install it with: apt-get install -y redis-server")
	}
	r := &RedisServer{port: FreePort(t), dir: t.TempDir(), password: password, t: t}
	r.Addr = "127.0.0.1:" + strconv.Itoa(r.port)
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// URL is the server's redis:// URL, with the password (URL-escaped) when
// it has one.
func (r *RedisServer) URL() string {
	u := &url.URL{Scheme: "redis", Host: r.Addr, Path: "/0"}
	if r.password != "" {
		u.User = url.UserPassword("", r.password)
	}
	return u.String()
}

// Start (re)starts the server on its port. The settings go through a
// config file, not argv, so ps does not show a password.
func (r *RedisServer) Start() {
	r.t.Helper()
	conf := filepath.Join(r.dir, "redis.conf")
	body := fmt.Sprintf("bind 127.0.0.1\nport %d\nsave \"\"\nappendonly no\ndir %s\nlogfile %s\n",
		r.port, r.dir, filepath.Join(r.dir, "redis.log"))
	if r.password != "" {
		body += fmt.Sprintf("requirepass %q\n", r.password)
	}
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		r.t.Fatalf("testenv: redis config: %v", err)
	}
	r.cmd = exec.Command("redis-server", conf)
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

// StartNATSServerWith starts an in-process nats-server with opts and shuts
// it down at cleanup. Zero fields get StartNATSServer's choices: Host
// 127.0.0.1, a free Port, StoreDir t.TempDir() (when JetStream is on),
// NoLog and NoSigs are always set. Use it for what ServerOptions does not
// cover (authentication, clusters). opts is modified in place, so a test
// can restart the server with the same options (same port and store).
func StartNATSServerWith(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		opts.Port = FreePort(t)
	}
	if opts.JetStream && opts.StoreDir == "" {
		opts.StoreDir = t.TempDir()
	}
	opts.NoLog, opts.NoSigs = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("testenv: nats-server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatalf("testenv: nats-server on port %d not ready", opts.Port)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// NATSCluster is a cluster of in-process nats-servers with JetStream,
// started by StartNATSCluster.
type NATSCluster struct {
	// Name is the cluster name; the servers are named n1, n2, ….
	Name string
	// Servers are the nodes in order; a stopped node stays in the slice.
	Servers []*server.Server

	mu      sync.Mutex
	stopped map[int]bool
}

// StartNATSCluster starts size in-process nats-servers with JetStream
// (each its own store directory, free client and cluster ports on
// 127.0.0.1), routed to each other as one cluster, and waits until every
// route is up and the JetStream meta group has a leader that every node
// follows. The servers shut down at cleanup.
func StartNATSCluster(t testing.TB, size int) *NATSCluster {
	t.Helper()
	if size < 1 {
		t.Fatalf("testenv: nats cluster of %d nodes", size)
	}
	c := &NATSCluster{Name: strings.ToLower(Unique("fs-cluster")), stopped: map[int]bool{}}
	clusterPorts := make([]int, size)
	for i := range clusterPorts {
		clusterPorts[i] = FreePort(t)
	}
	opts := make([]*server.Options, size)
	for i := range opts {
		var routes []*url.URL
		for j, p := range clusterPorts {
			if j != i {
				routes = append(routes, &url.URL{Scheme: "nats-route", Host: "127.0.0.1:" + strconv.Itoa(p)})
			}
		}
		opts[i] = &server.Options{
			ServerName: "n" + strconv.Itoa(i+1),
			Host:       "127.0.0.1",
			Port:       FreePort(t),
			JetStream:  true,
			StoreDir:   t.TempDir(),
			Cluster:    server.ClusterOpts{Name: c.Name, Host: "127.0.0.1", Port: clusterPorts[i]},
			Routes:     routes,
			NoLog:      true,
			NoSigs:     true,
		}
	}
	// Start the nodes together: each one's JetStream waits for its peers.
	c.Servers = make([]*server.Server, size)
	for i, o := range opts {
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatalf("testenv: nats-server %s: %v", o.ServerName, err)
		}
		c.Servers[i] = s
		go s.Start()
	}
	t.Cleanup(func() {
		for i := range c.Servers {
			c.Stop(i)
		}
	})
	for i, s := range c.Servers {
		if !s.ReadyForConnections(20 * time.Second) {
			t.Fatalf("testenv: nats-server %s on port %d not ready", opts[i].ServerName, opts[i].Port)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, s := range c.Servers {
		for s.NumRoutes() < size-1 {
			if time.Now().After(deadline) {
				t.Fatalf("testenv: nats-server %s has %d routes after 30s, want %d", s.Name(), s.NumRoutes(), size-1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if _, err := c.WaitMetaLeader(time.Until(deadline)); err != nil {
		t.Fatal(err)
	}
	return c
}

// URLs returns the client URL of every node, in order.
func (c *NATSCluster) URLs() []string {
	out := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		out[i] = s.ClientURL()
	}
	return out
}

// URL returns the client URLs of the running nodes, comma separated (the
// form nats.Connect and FRIENDSYNC_NATS_URL take).
func (c *NATSCluster) URL() string {
	var us []string
	for i, s := range c.Servers {
		if !c.isStopped(i) {
			us = append(us, s.ClientURL())
		}
	}
	return strings.Join(us, ",")
}

// Index returns the position of the node named name, or -1.
func (c *NATSCluster) Index(name string) int {
	for i, s := range c.Servers {
		if s.Name() == name {
			return i
		}
	}
	return -1
}

// Stop shuts node i down (as an operator stopping it: the server first
// hands off the Raft groups it leads) and waits until it is down.
func (c *NATSCluster) Stop(i int) {
	c.mu.Lock()
	done := c.stopped[i]
	c.stopped[i] = true
	c.mu.Unlock()
	if done {
		return
	}
	c.Servers[i].Shutdown()
	c.Servers[i].WaitForShutdown()
}

func (c *NATSCluster) isStopped(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped[i]
}

// WaitMetaLeader waits until one running node leads the JetStream meta
// group and every running node is current with it, and returns the
// leader's name.
func (c *NATSCluster) WaitMetaLeader(timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		leader, current := "", true
		for i, s := range c.Servers {
			if c.isStopped(i) {
				continue
			}
			if s.JetStreamIsLeader() {
				leader = s.Name()
			}
			current = current && s.JetStreamIsCurrent()
		}
		if leader != "" && current {
			return leader, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("testenv: nats cluster %s: no JetStream meta leader followed by every node after %s", c.Name, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
