package childproc

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process can take it before it is used: callers that bind it
// retry with a new port (see StartAttempts).
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreeAddr returns "127.0.0.1:port" for a port FreePort found.
func FreeAddr() (string, error) {
	port, err := FreePort()
	if err != nil {
		return "", err
	}
	return LoopbackAddr(port), nil
}

// LoopbackAddr returns "127.0.0.1:port".
func LoopbackAddr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// StartAttempts bounds how many free ports a start tries: another process
// can take a port between FreePort and the child binding it.
const StartAttempts = 5

// WaitAccepting dials addr until it accepts a connection, gone returns an
// error (the server it waits for has ended), or wait passes.
func WaitAccepting(addr string, wait time.Duration, gone func() error) error {
	deadline := time.Now().Add(wait)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if gerr := gone(); gerr != nil {
			return gerr
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing accepting on %s after %v: %w", addr, wait, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
