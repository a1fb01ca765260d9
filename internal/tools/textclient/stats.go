package textclient

import (
	"fmt"
	"strings"
	"time"
)

// Stats sends "stats" (or "stats <group>" when group is not empty) on c
// and returns the STAT lines as name -> value. deadline bounds the
// exchange.
func (c *Conn) Stats(group string, deadline time.Time) (map[string]string, error) {
	if group == "" {
		c.AppendCommand("stats")
	} else {
		c.AppendCommand("stats", group)
	}
	if err := c.Flush(deadline); err != nil {
		return nil, fmt.Errorf("stats %s: %w", group, err)
	}
	m, err := c.ReadStats()
	if err != nil {
		return nil, fmt.Errorf("stats %s: %w", group, err)
	}
	return m, nil
}

// Stats runs one stats exchange with addr, a memcached or an mcproxy, on a
// connection of its own; timeout bounds the dial and the exchange each.
func Stats(addr, group string, timeout time.Duration) (map[string]string, error) {
	c, err := Dial(addr, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	m, err := c.Stats(group, time.Now().Add(timeout))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	return m, nil
}

// ParseStats turns the STAT lines of a reply already read into name ->
// value, skipping every other line.
func ParseStats(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\r\n") {
		if f := strings.SplitN(line, " ", 3); len(f) == 3 && f[0] == "STAT" {
			m[f[1]] = f[2]
		}
	}
	return m
}
