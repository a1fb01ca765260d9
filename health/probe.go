package health

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"time"
)

// prober sends "version" to one backend on a connection of its own, kept
// open between probes so that a probe costs one round trip, not a
// handshake. Any failure closes the connection; the next probe dials again.
type prober struct {
	addr    string
	timeout time.Duration
	dial    func(ctx context.Context, addr string) (net.Conn, error) // nil: plain TCP
	conn    net.Conn
	br      *bufio.Reader
}

var versionCmd = []byte("version\r\n")

// probe runs one probe, bounded by the timeout from dial to reply.
func (p *prober) probe() error {
	deadline := time.Now().Add(p.timeout)
	if p.conn == nil {
		c, err := p.connect(deadline)
		if err != nil {
			return fmt.Errorf("probe dial %s: %w", p.addr, err)
		}
		p.conn = c
		if p.br == nil {
			p.br = bufio.NewReaderSize(c, 256)
		} else {
			p.br.Reset(c)
		}
	}
	if err := p.exchange(deadline); err != nil {
		p.close()
		return err
	}
	return nil
}

// connect dials the backend by Config.Dial, or plain TCP.
func (p *prober) connect(deadline time.Time) (net.Conn, error) {
	if p.dial == nil {
		return net.DialTimeout("tcp", p.addr, p.timeout)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	return p.dial(ctx, p.addr)
}

func (p *prober) exchange(deadline time.Time) error {
	_ = p.conn.SetDeadline(deadline)
	if _, err := p.conn.Write(versionCmd); err != nil {
		return fmt.Errorf("probe write %s: %w", p.addr, err)
	}
	line, err := p.br.ReadSlice('\n')
	if err != nil {
		return fmt.Errorf("probe read %s: %w", p.addr, err)
	}
	if !bytes.HasPrefix(line, []byte("VERSION ")) {
		return fmt.Errorf("probe %s: unexpected reply %.64q", p.addr, line)
	}
	return nil
}

func (p *prober) close() {
	if p.conn != nil {
		_ = p.conn.Close()
		p.conn = nil
	}
}
