package config

import (
	"fmt"
	"strconv"
	"strings"
)

// EjectionCap is health.max_ejected as written in the file, normalised:
// a whole number of backends ("1") or a whole percentage ("50%").
type EjectionCap string

// Parse splits the cap into its number and whether it is a percentage.
func (c EjectionCap) Parse() (n int, percent bool, err error) {
	s, percent := strings.CutSuffix(string(c), "%")
	n, err = strconv.Atoi(s)
	switch {
	case err != nil || strings.HasPrefix(s, "+"):
		return 0, false, fmt.Errorf("%q is not a number of backends such as 1 or a share of the pool such as \"50%%\"", string(c))
	case n < 0:
		return 0, false, fmt.Errorf("%s must not be negative (0 never ejects)", c)
	case percent && n > 100:
		return 0, false, fmt.Errorf("%s is out of range 0%%..100%%", c)
	}
	return n, percent, nil
}
