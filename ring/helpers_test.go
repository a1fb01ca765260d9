package ring

import (
	"fmt"
	"strconv"
)

// numKeys is the sample size of the balance and movement figures. A
// million keys over ~8k partitions puts ~126 keys in a partition, so the
// key counts follow the partition counts to within about 1%.
const numKeys = 1_000_000

// appendKey writes the i-th test key ("key:<i>") into buf, so loops over a
// million keys do not allocate.
func appendKey(buf []byte, i int) []byte {
	return strconv.AppendInt(append(buf[:0], "key:"...), int64(i), 10)
}

// backends returns n weight-1 members with distinct addresses.
func backends(n int) []Member {
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = Member{Name: fmt.Sprintf("10.0.0.%d:11211", i+1), Weight: 1}
	}
	return ms
}

func mustNew(tb interface {
	Helper()
	Fatalf(string, ...any)
}, ms []Member, cfg Config) *Ring {
	tb.Helper()
	r, err := New(ms, cfg)
	if err != nil {
		tb.Fatalf("New(%d members, %+v): %v", len(ms), cfg, err)
	}
	return r
}

// keyCounts returns how many of the numKeys test keys each member owns.
func keyCounts(r *Ring) []int {
	counts := make([]int, r.Len())
	var buf []byte
	for i := 0; i < numKeys; i++ {
		buf = appendKey(buf, i)
		counts[r.Locate(buf)]++
	}
	return counts
}

// partitionCounts returns how many partitions each member owns.
func partitionCounts(r *Ring) []int {
	counts := make([]int, r.Len())
	for _, o := range r.owner {
		counts[o]++
	}
	return counts
}

// maxOverMean returns max(c)/mean(c), mean taken over total/weightSum per
// unit of weight.
func maxOverMean(counts []int, ms []Member) float64 {
	total, wsum := 0, 0
	for i, c := range counts {
		total += c
		wsum += max(ms[i].Weight, 1)
	}
	worst := 0.0
	for i, c := range counts {
		fair := float64(total) * float64(max(ms[i].Weight, 1)) / float64(wsum)
		worst = max(worst, float64(c)/fair)
	}
	return worst
}
