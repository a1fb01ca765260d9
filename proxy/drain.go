package proxy

import (
	"context"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// drainQuiet is how long a client of a stopping proxy may stay silent
// before the proxy takes it that the client has sent everything it is
// going to send. A command already in the socket buffer when shutdown
// began is read at once; one still on the wire arrives well within this
// on a LAN, even on a loaded host. It stays short because every session
// waits it out at least once, in parallel, before the proxy can exit.
const drainQuiet = 200 * time.Millisecond

// drain starts a graceful end of the session, on Shutdown: the session
// keeps reading and answering commands until the client has been quiet for
// drainQuiet (or leaves), then writes the replies it owes and half-closes.
// It runs on the session's loop.
func (s *session) drain() {
	if s.state == sessEnded || s.draining() {
		return
	}
	s.drainSince = s.l.now
	if !s.reading() {
		s.maybeEnd()
		return
	}
	s.l.timers.wantScan(s.l.now)
}

// draining reports whether Shutdown has begun the session's drain.
func (s *session) draining() bool { return !s.drainSince.IsZero() }

// startLinger begins the gentle close of a session whose replies have all
// been written: it half-closes, so the client reads EOF after its last
// reply, then reads and throws away whatever the client still sends for up
// to drainQuiet, because closing a socket with unread bytes makes the
// kernel send a reset, which can destroy replies the client has not read
// yet.
func (s *session) startLinger() {
	if err := unix.Shutdown(s.fd, unix.SHUT_WR); err != nil {
		s.end()
		return
	}
	s.state = sessLingering
	s.lingerUntil = s.l.now.Add(drainQuiet)
	s.paused, s.wantWrite = false, false
	s.setInterest()
	s.l.timers.wantScan(s.l.now)
	s.lingerRead()
}

// lingerRead throws away what a half-closed client sends; its end of the
// stream (or an error) ends the session. It reads at most the turn's byte
// budget (turn_budget.go): the socket is level-triggered, so what is left
// brings it back next turn.
func (s *session) lingerRead() {
	var buf [4096]byte
	for budget := s.p.opts.ReadBytesPerEvent; budget > 0; {
		n, err := unix.Read(s.fd, buf[:])
		budget -= max(n, 0)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return
		case err != nil || n == 0:
			s.end()
			return
		}
	}
}

// Shutdown stops accepting and drains every client: each session goes on
// reading and answering what its client has already sent, until the client
// has been quiet for a moment (drainQuiet) or leaves, then writes the last
// of its replies and half-closes, so the client reads every reply it is
// owed and then EOF. Then it closes backends, health checking and the
// event loops. When ctx ends first, remaining client connections are
// closed at once and Shutdown returns ctx's error.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.draining.Store(true)
	for _, a := range p.listeners {
		a.close()
	}
	draining := len(p.sessions)
	p.mu.Unlock()
	p.eachSession((*session).drain)
	start := time.Now()

	done := make(chan struct{})
	go func() { p.sessWG.Wait(); close(done) }()
	var err error
	select {
	case <-done:
		p.log.Info("clients drained", zap.Int("sessions", draining), zap.Duration("took", time.Since(start)))
	case <-ctx.Done():
		err = ctx.Err()
		p.mu.Lock()
		left := len(p.sessions)
		p.mu.Unlock()
		p.eachSession(func(s *session) {
			s.lost()
			s.maybeEnd()
		})
		// Fail what is still waiting for a backend, so that the grace bounds
		// the shutdown rather than the grace plus a backend timeout.
		p.closeBackends()
		p.log.Warn("drain cut short: closed the clients still draining", zap.Int("sessions", draining),
			zap.Int("still_draining", left), zap.Duration("took", time.Since(start)))
		<-done // sessions end at once: their requests have all failed
	}
	p.acceptors.Wait()
	p.health.Close()
	close(p.stopRetiring)
	p.retiring.Wait()
	p.closeBackends()
	p.stopLoops()
	return err
}
