package chaos

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("chaos: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// natsServer is an in-process nats-server with JetStream on a fixed port
// and store directory, so a restart finds its streams again.
type natsServer struct {
	port int
	dir  string
	mu   sync.Mutex
	srv  *server.Server
}

func startNATS(dir string) (*natsServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	n := &natsServer{port: port, dir: dir}
	if err := n.start(); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *natsServer) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

// start starts the server (again) on its port and directory.
func (n *natsServer) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	s, err := server.NewServer(&server.Options{
		ServerName: "fschaos",
		Host:       "127.0.0.1",
		Port:       n.port,
		JetStream:  true,
		StoreDir:   n.dir,
		NoLog:      true,
		NoSigs:     true,
	})
	if err != nil {
		return fmt.Errorf("chaos: nats-server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		s.Shutdown()
		return fmt.Errorf("chaos: nats-server on port %d not ready after 20s", n.port)
	}
	n.srv = s
	return nil
}

// stop shuts the server down and waits until it is gone.
func (n *natsServer) stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv == nil {
		return
	}
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.srv = nil
}

// redisServer is a throwaway redis-server subprocess with an append-only
// file: the version store must keep its data (docs/ARCHITECTURE.md).
type redisServer struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

func startRedis(dir string) (*redisServer, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, errors.New("chaos: redis-server not found: install it with: apt-get install -y redis-server")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &redisServer{addr: "127.0.0.1:" + strconv.Itoa(port), done: make(chan struct{})}
	r.cmd = exec.Command("redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--dir", dir,
		"--logfile", filepath.Join(dir, "redis.log"))
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("chaos: start redis-server: %w", err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if redisPing(r.addr) == nil {
			return r, nil
		}
		select {
		case <-r.done:
			return nil, fmt.Errorf("chaos: redis-server on %s exited at start (see %s)", r.addr, filepath.Join(dir, "redis.log"))
		case <-time.After(50 * time.Millisecond):
		}
	}
	r.stop()
	return nil, fmt.Errorf("chaos: redis-server on %s not answering PING after 15s", r.addr)
}

// redisPing sends one inline PING and expects +PONG.
func redisPing(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, "PING\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// stop kills the server and waits for it.
func (r *redisServer) stop() {
	if r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
	}
	<-r.done
}

// redisHGet reads one hash field over RESP; ok is false when it is not
// set.
func redisHGet(addr, key, field string) (string, bool, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", false, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	cmd := fmt.Sprintf("*3\r\n$4\r\nHGET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(key), key, len(field), field)
	if _, err := io.WriteString(c, cmd); err != nil {
		return "", false, err
	}
	rd := bufio.NewReader(c)
	head, err := rd.ReadString('\n')
	if err != nil {
		return "", false, err
	}
	if head == "$-1\r\n" {
		return "", false, nil
	}
	if len(head) < 4 || head[0] != '$' {
		return "", false, fmt.Errorf("HGET answered %q", head)
	}
	n, err := strconv.Atoi(head[1 : len(head)-2])
	if err != nil {
		return "", false, fmt.Errorf("HGET answered %q", head)
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(rd, buf); err != nil {
		return "", false, err
	}
	return string(buf[:n]), true, nil
}
