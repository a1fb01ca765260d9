package config

import (
	"fmt"
	"strconv"
)

// parseSize reads a size the way memcached's -I does: a whole number of
// bytes, optionally followed by one suffix k/K (KiB) or m/M (MiB).
// "1m" is 1048576, "512k" is 524288, "2097152" is 2097152.
func parseSize(s string) (int64, error) {
	num, mult := s, int64(1)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			num, mult = s[:n-1], 1<<10
		case 'm', 'M':
			num, mult = s[:n-1], 1<<20
		}
	}
	bad := fmt.Errorf("want a size in bytes, or with suffix k or m (1024-based) such as 1m or 512k, got %q", s)
	if num == "" {
		return 0, bad
	}
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, bad
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v > (1<<62)/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return v * mult, nil
}

// formatSize writes bytes in the shortest form parseSize reads back.
func formatSize(b int64) string {
	switch {
	case b != 0 && b%(1<<20) == 0:
		return strconv.FormatInt(b>>20, 10) + "m"
	case b != 0 && b%(1<<10) == 0:
		return strconv.FormatInt(b>>10, 10) + "k"
	}
	return strconv.FormatInt(b, 10)
}
