package bench

import (
	"math"
	"math/bits"
	"time"
)

// Histogram geometry. Values are nanoseconds. Below 2*subCount every value has
// its own bucket; above, each power of two is split into subCount buckets, so
// a bucket is at most 1/subCount (0.8%) wide relative to its values, as in an
// HDR histogram with two significant digits.
const (
	subBits   = 7
	subCount  = 1 << subBits // buckets per power of two
	linearMax = 2 * subCount // values below this are exact
	// maxShift is the coarsest bucket: values up to 2^(subBits+1+maxShift) ns,
	// about 36 minutes, are recorded; larger ones land in the last bucket.
	maxShift   = 33
	numBuckets = linearMax + maxShift*subCount
)

// Histogram is a fixed-size latency histogram with logarithmic buckets. It
// never allocates after creation, so a load goroutine can record every request
// into its own Histogram; Merge combines them at the end. The zero value is
// ready to use. A Histogram is not safe for concurrent use.
type Histogram struct {
	counts [numBuckets]uint64
	total  uint64
	sum    uint64 // nanoseconds; overflows only after ~584 years of latency
	min    int64
	max    int64
}

// bucketOf returns the bucket index of a value in nanoseconds.
func bucketOf(v int64) int {
	if v < linearMax {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - (subBits + 1) // >= 1 here
	if shift > maxShift {
		return numBuckets - 1
	}
	// v>>shift is in [subCount, 2*subCount).
	return linearMax + (shift-1)*subCount + int(v>>shift) - subCount
}

// bucketRange returns the smallest and largest values that land in bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < linearMax {
		return int64(i), int64(i)
	}
	shift := (i-linearMax)/subCount + 1
	lo = int64((i-linearMax)%subCount+subCount) << shift
	return lo, lo + (int64(1) << shift) - 1
}

// Record adds one latency. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	if h.total == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.total++
	h.sum += uint64(v)
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.total += o.total
	h.sum += o.sum
}

// Reset forgets every recorded value.
func (h *Histogram) Reset() { *h = Histogram{} }

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total }

// Min returns the smallest recorded value exactly, or 0 when empty.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Max returns the largest recorded value exactly, or 0 when empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the exact mean of the recorded values, or 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum / h.total)
}

// Quantile returns the value at quantile q (0 <= q <= 1): the upper edge of
// the bucket holding the ceil(q*count)-th smallest value, clamped to the
// recorded min and max. It overstates the true value by at most one bucket
// width (under 1%). It returns 0 when the histogram is empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	if q <= 0 {
		return time.Duration(h.min)
	}
	if q >= 1 {
		return time.Duration(h.max)
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := bucketRange(i)
			return time.Duration(min(max(hi, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}
