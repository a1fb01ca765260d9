package main

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"time"
)

// probe is the health check a container runtime runs (the Dockerfile's
// HEALTHCHECK; distroless has no shell or nc): it connects to addr, sends
// "version" and wants a "VERSION " line back, all within timeout. The
// proxy answers "version" itself, so this checks that mcproxy accepts and
// serves clients, whatever its backends do; /readyz says whether any
// backend is live.
func probe(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return fmt.Errorf("probe %s: %w", addr, err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("probe %s: %w", addr, err)
	}
	if _, err := c.Write([]byte("version\r\n")); err != nil {
		return fmt.Errorf("probe %s: send version: %w", addr, err)
	}
	line, err := bufio.NewReaderSize(c, 256).ReadString('\n')
	if err != nil {
		return fmt.Errorf("probe %s: read reply to version: %w", addr, err)
	}
	if !strings.HasPrefix(line, "VERSION ") {
		return fmt.Errorf("probe %s: version answered %q, want a VERSION line", addr, strings.TrimSpace(line))
	}
	return nil
}
