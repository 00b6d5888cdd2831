package controlplane

import (
	"io"
	"net"
	"sync"
)

// Proxy is a TCP proxy in front of a member's API server. Cut turns it into a
// black hole: connections, open and new, stay open but nothing passes, so
// clients hang until their own timeouts (unlike a stopped server, which
// refuses at once). Restore closes the held connections, so clients
// reconnect, and forwards again.
type Proxy struct {
	ln      net.Listener
	backend string

	mu     sync.Mutex // protects the fields below
	cut    bool
	conns  map[net.Conn]net.Conn // client -> backend (nil while held)
	closed bool
}

// Addr is the proxy's listen address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) start(backend string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	p.ln, p.backend, p.conns = ln, backend, map[net.Conn]net.Conn{}
	go p.serve()
	return nil
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *Proxy) handle(c net.Conn) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = c.Close()
		return
	}
	if p.cut {
		p.conns[c] = nil // held: never answered until Restore
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()

	b, err := net.Dial("tcp", p.backend)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	if p.cut || p.closed {
		p.conns[c] = nil
		p.mu.Unlock()
		_ = b.Close()
		return
	}
	p.conns[c] = b
	p.mu.Unlock()

	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(b, c)
	go pipe(c, b)
	<-done
	_ = b.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, held := p.conns[c]; held && p.conns[c] == nil {
		return // cut while piping: leave the client hanging
	}
	delete(p.conns, c)
	_ = c.Close()
}

// Cut black-holes the member: open connections stop passing bytes and new
// ones are accepted and never answered.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c, b := range p.conns {
		if b != nil {
			p.conns[c] = nil // mark held before the pipe ends
			_ = b.Close()
		}
	}
}

// Restore ends the black hole: held connections are closed (clients see the
// connection drop and dial again) and traffic flows.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	for c, b := range p.conns {
		if b == nil {
			_ = c.Close()
			delete(p.conns, c)
		}
	}
}

// Close stops the proxy and drops every connection.
func (p *Proxy) Close() {
	if p.ln == nil {
		return
	}
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for c, b := range p.conns {
		_ = c.Close()
		if b != nil {
			_ = b.Close()
		}
	}
	p.conns = map[net.Conn]net.Conn{}
}
