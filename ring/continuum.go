package ring

import "slices"

// point is one point of a continuum: a 32-bit position and the index of
// the server that put it there.
type point struct {
	value  uint32
	server uint32
}

// continuum is the sorted circle of points ketama, libketama and Dalli
// build. It is immutable once built.
type continuum []point

// sortPoints sorts points by value, keeping the order they were made in
// among equal values. That is the order every original ends up with:
// libmemcached breaks ties by server index explicitly, and twemproxy and
// Ruby sort with glibc's qsort, a merge sort that keeps equal elements in
// place (the points are made server by server, in list order).
func sortPoints(ps []point) continuum {
	slices.SortStableFunc(ps, func(a, b point) int {
		switch {
		case a.value < b.value:
			return -1
		case a.value > b.value:
			return 1
		}
		return 0
	})
	return ps
}

// atOrAfter returns the index of the first point whose value is at least
// h, wrapping to the first point past the last: ketama's and libmemcached's
// dispatch (a binary search for the lower bound). Among equal values the
// first wins.
func (c continuum) atOrAfter(h uint32) int {
	lo, hi := 0, len(c)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if c[mid].value < h {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == len(c) {
		return 0
	}
	return lo
}

// atOrBelow returns the index of the last point whose value is at most h,
// wrapping to the last point when h is below the first: Dalli's dispatch
// (bsearch for the first value above h, minus one; Ruby's index -1 is the
// last entry). Among equal values the last wins.
func (c continuum) atOrBelow(h uint32) int {
	lo, hi := 0, len(c)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if c[mid].value <= h {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return len(c) - 1
	}
	return lo - 1
}

// appendFrom appends up to n distinct servers to dst, walking the circle
// clockwise from point i: the server of point i first, then each server
// not yet seen, in the order their next points come. The walk stops after
// one turn.
func (c continuum) appendFrom(dst []int, i, n int) []int {
	start := len(dst)
	for step := 0; step < len(c) && len(dst)-start < n; step++ {
		dst = appendDistinct(dst, start, int(c[i].server))
		if i++; i == len(c) {
			i = 0
		}
	}
	return dst
}

// listOrder returns 0, 1, ..., n-1: servers in the order given, the order
// libmemcached adds them in.
func listOrder(n int) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	return order
}
