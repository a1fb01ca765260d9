package memctest

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// startAttempts bounds how many free ports Launch tries: another process
// can take a port between FreePort and memcached binding it.
const startAttempts = 5

// Launch starts memcached on a free loopback port with the given extra
// arguments and returns it running. It is the error-returning core of Start
// for callers outside a test (cmd/mcsoak): the caller owns the process and
// must Kill it.
func Launch(extraArgs ...string) (*Server, error) {
	var lastErr error
	for attempt := 0; attempt < startAttempts; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port, args: extraArgs}
		if err := s.start(); err != nil {
			lastErr = err
			continue // most likely another process took the port first
		}
		return s, nil
	}
	return nil, fmt.Errorf("start memcached: %w", lastErr)
}

// Relaunch kills memcached (if it runs) and starts it again on the same
// port with the same arguments; it comes back empty, as after a real crash.
// It is the error-returning core of Restart.
func (s *Server) Relaunch() error {
	s.Kill()
	var err error
	for i := 0; i < 50; i++ { // the port can linger briefly after a kill
		if err = s.start(); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("restart memcached on %s: %w", s.Addr, err)
}
