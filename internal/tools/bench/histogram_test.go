package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramBucketsCoverEveryValue(t *testing.T) {
	// Each bucket's range must start right after the previous one ends, and
	// bucketOf must map both edges of a range to that bucket.
	var prevHi int64 = -1
	for i := 0; i < numBuckets; i++ {
		lo, hi := bucketRange(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if hi < lo {
			t.Fatalf("bucket %d: hi %d < lo %d", i, hi, lo)
		}
		if i < numBuckets-1 {
			if got := bucketOf(lo); got != i {
				t.Fatalf("bucketOf(%d) = %d, want %d", lo, got, i)
			}
			if got := bucketOf(hi); got != i {
				t.Fatalf("bucketOf(%d) = %d, want %d", hi, got, i)
			}
		}
		// Relative width stays under 1/subCount.
		if lo >= linearMax && float64(hi-lo+1)/float64(lo) > 1.0/subCount+1e-12 {
			t.Fatalf("bucket %d [%d,%d] is wider than 1/%d of its values", i, lo, hi, subCount)
		}
		prevHi = hi
	}
	if got := bucketOf(1 << 62); got != numBuckets-1 {
		t.Fatalf("huge value went to bucket %d, want the last (%d)", got, numBuckets-1)
	}
	if got := bucketOf(-5); got != 0 {
		t.Fatalf("negative value went to bucket %d, want 0", got)
	}
}

func TestHistogramQuantilesMatchExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	vals := make([]int64, 200000)
	for i := range vals {
		// Log-uniform from 1us to 100ms, like a latency distribution with a tail.
		v := int64(1000 * math.Pow(10, rng.Float64()*5))
		vals[i] = v
		h.Record(time.Duration(v))
	}
	slices.Sort(vals)
	if h.Count() != uint64(len(vals)) {
		t.Fatalf("count %d, want %d", h.Count(), len(vals))
	}
	if h.Min() != time.Duration(vals[0]) || h.Max() != time.Duration(vals[len(vals)-1]) {
		t.Fatalf("min/max %v/%v, want %v/%v", h.Min(), h.Max(), time.Duration(vals[0]), time.Duration(vals[len(vals)-1]))
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := int64(h.Quantile(q))
		if got < exact || float64(got-exact) > float64(exact)/subCount+1 {
			t.Errorf("q%.3f = %d, exact %d: off by more than one bucket", q, got, exact)
		}
	}
	if h.Quantile(0) != h.Min() || h.Quantile(1) != h.Max() {
		t.Errorf("q0/q1 = %v/%v, want min/max", h.Quantile(0), h.Quantile(1))
	}
}

func TestHistogramSmallValuesExact(t *testing.T) {
	var h Histogram
	for v := 1; v <= 100; v++ {
		h.Record(time.Duration(v))
	}
	if got := h.Quantile(0.5); got != 50 {
		t.Errorf("p50 of 1..100ns = %v, want 50ns", got)
	}
	if got := h.Quantile(0.99); got != 99 {
		t.Errorf("p99 of 1..100ns = %v, want 99ns", got)
	}
	if got := h.Mean(); got != 50 { // 5050/100 = 50.5, truncated
		t.Errorf("mean = %v, want 50ns", got)
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, all Histogram
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i) * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(new(Histogram)) // empty: no effect, min stays
	if m != all {
		t.Fatalf("merged histogram differs from one that recorded everything")
	}
	if m.Min() != time.Microsecond || m.Max() != time.Millisecond {
		t.Fatalf("min/max %v/%v", m.Min(), m.Max())
	}
	m.Reset()
	if m.Count() != 0 || m.Quantile(0.5) != 0 || m.Mean() != 0 {
		t.Fatalf("reset histogram not empty")
	}
}

func TestHistogramRecordDoesNotAllocate(t *testing.T) {
	h := new(Histogram)
	d := 1234 * time.Microsecond
	if n := testing.AllocsPerRun(1000, func() { h.Record(d); d += 777 }); n != 0 {
		t.Fatalf("Record allocates %v times per call", n)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	h := new(Histogram)
	for i := 0; i < b.N; i++ {
		h.Record(time.Duration(i&0xfffff) * 100)
	}
}
