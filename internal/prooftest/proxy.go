package prooftest

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// OutageProxy forwards TCP from a loopback port to a backend. While down
// it closes every connection and refuses new ones, so clients see the
// backend gone while the backend keeps its data (a network outage, or a
// restart of a server that persists).
type OutageProxy struct {
	addr    string
	backend string
	ln      net.Listener
	mu      sync.Mutex
	down    bool
	conns   map[net.Conn]bool
	wg      sync.WaitGroup
}

// StartOutageProxy listens on 127.0.0.1 and forwards to backend.
func StartOutageProxy(backend string) (*OutageProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("prooftest: proxy listen: %w", err)
	}
	p := &OutageProxy{addr: ln.Addr().String(), backend: backend, ln: ln, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *OutageProxy) Addr() string { return p.addr }

func (p *OutageProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		go p.pipe(c)
	}
}

func (p *OutageProxy) pipe(c net.Conn) {
	b, err := net.DialTimeout("tcp", p.backend, time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		b.Close()
		return
	}
	p.conns[c], p.conns[b] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
	<-done
	c.Close()
	b.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, b)
	p.mu.Unlock()
}

// SetDown starts (true) or ends (false) the outage.
func (p *OutageProxy) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
	}
}

// Close stops listening, closes every connection and waits for the accept
// loop to end.
func (p *OutageProxy) Close() {
	p.ln.Close()
	p.SetDown(true)
	p.wg.Wait()
}
