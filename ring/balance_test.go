package ring

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

// loadBound is the most a member may own relative to its fair share, in
// partitions: the library caps a share at ceil(P/shares*Load) partitions,
// so the bound is a hair above Load (1.2502 for 7919 partitions over 10).
func loadBound(cfg Config, shares int) float64 {
	cfg, _ = cfg.WithDefaults()
	fair := float64(cfg.Partitions) / float64(shares)
	return math.Ceil(fair*cfg.Load) / fair
}

// keySampleSlack allows for the keys of a partition not being exactly
// 1/Partitions of the sample: with ~126 keys a partition and >=100k keys a
// member, the key share follows the partition share to within ~0.3%.
const keySampleSlack = 0.01

func minOverMean(counts []int, ms []Member) float64 {
	total, wsum := 0, 0
	for i, c := range counts {
		total += c
		wsum += ms[i].Weight
	}
	worst := math.Inf(1)
	for i, c := range counts {
		worst = min(worst, float64(c)/(float64(total)*float64(ms[i].Weight)/float64(wsum)))
	}
	return worst
}

// TestBalance places 1M keys on 3, 5 and 10 equal backends with the default
// config. The bounded load guarantees the top: no backend above ~1.25x the
// mean. It does nothing for the bottom; that depends on ReplicationFactor
// (see TestBalanceReplicationFactor).
func TestBalance(t *testing.T) {
	t.Logf("%-3s %-9s %-9s %-9s %-7s %s", "n", "keys max", "keys min", "parts max", "bound", "keys per backend (max and min are /mean)")
	for _, n := range []int{3, 5, 10} {
		ms := backends(n)
		r := mustNew(t, ms, Config{})
		keys, parts := keyCounts(r), partitionCounts(r)
		bound := loadBound(Config{}, n)
		kmax, kmin, pmax := maxOverMean(keys, ms), minOverMean(keys, ms), maxOverMean(parts, ms)
		t.Logf("%-3d %-9.4f %-9.4f %-9.4f %-7.4f %v", n, kmax, kmin, pmax, bound, keys)
		if pmax > bound+1e-9 {
			t.Errorf("n=%d: partitions max/mean %.4f above the load bound %.4f", n, pmax, bound)
		}
		if kmax > bound+keySampleSlack {
			t.Errorf("n=%d: keys max/mean %.4f above the load bound %.4f (+%.2f sampling slack)", n, kmax, bound, keySampleSlack)
		}
		if slices.Min(keys) == 0 {
			t.Errorf("n=%d: a backend owns no keys: %v", n, keys)
		}
	}
}

// TestBalanceWeighted checks that weight counts: per unit of weight the
// load bound holds, and a weight-2 backend gets about twice the keys of a
// weight-1 one. A single ring is noisy at ReplicationFactor 20 (a share's
// arc varies by tens of percent), so the "twice" is checked on the sum over
// many rings, where the noise averages out.
func TestBalanceWeighted(t *testing.T) {
	ms := []Member{{Name: "10.0.0.1:11211", Weight: 1}, {Name: "10.0.0.2:11211", Weight: 1}, {Name: "10.0.0.3:11211", Weight: 2}, {Name: "10.0.0.4:11211", Weight: 3}}
	r := mustNew(t, ms, Config{})
	keys := keyCounts(r)
	bound := loadBound(Config{}, 7)
	perUnit := make([]float64, len(keys))
	for i, k := range keys {
		perUnit[i] = float64(k) / float64(ms[i].Weight) / (numKeys / 7.0)
	}
	t.Logf("weights 1,1,2,3: keys %v, keys per unit of weight / fair share %.3f, bound %.4f", keys, perUnit, bound)
	if m := maxOverMean(keys, ms); m > bound+keySampleSlack {
		t.Errorf("keys per unit of weight max/mean %.4f above the load bound %.4f", m, bound)
	}

	// Sum over 40 rings of 2 weight-1 and 2 weight-2 backends.
	var w1, w2 int
	for s := 0; s < 40; s++ {
		ms := []Member{
			{Name: fmt.Sprintf("10.1.%d.1:11211", s), Weight: 1},
			{Name: fmt.Sprintf("10.1.%d.2:11211", s), Weight: 2},
			{Name: fmt.Sprintf("10.1.%d.3:11211", s), Weight: 1},
			{Name: fmt.Sprintf("10.1.%d.4:11211", s), Weight: 2},
		}
		parts := partitionCounts(mustNew(t, ms, Config{}))
		w1 += parts[0] + parts[2]
		w2 += parts[1] + parts[3]
	}
	ratio := float64(w2) / float64(w1)
	t.Logf("weight 2 vs weight 1 over 40 rings: %.3f x the partitions (ideal 2)", ratio)
	if ratio < 1.8 || ratio > 2.2 {
		t.Errorf("weight-2 backends own %.3f x the partitions of weight-1 ones, want about 2", ratio)
	}
}

// TestBalanceReplicationFactor reports how the spread of equal backends
// narrows with more ring points per share, averaged over 10 address sets
// per cell. It asserts only the load bound; the figures are for choosing
// the default.
func TestBalanceReplicationFactor(t *testing.T) {
	const sets = 10
	t.Logf("%-4s %-3s %-14s %-14s %-9s %-9s", "rf", "n", "max/mean avg", "min/mean avg", "worst max", "worst min")
	for _, rf := range []int{20, 50, 100, 160} {
		cfg := Config{ReplicationFactor: rf}
		for _, n := range []int{3, 5, 10} {
			var sumMax, sumMin, worstMax float64
			worstMin := math.Inf(1)
			for s := 0; s < sets; s++ {
				ms := make([]Member, n)
				for i := range ms {
					ms[i] = Member{Name: fmt.Sprintf("10.2.%d.%d:11211", s, i), Weight: 1}
				}
				parts := partitionCounts(mustNew(t, ms, cfg))
				mx, mn := maxOverMean(parts, ms), minOverMean(parts, ms)
				if bound := loadBound(cfg, n); mx > bound+1e-9 {
					t.Errorf("rf=%d n=%d: max/mean %.4f above bound %.4f", rf, n, mx, bound)
				}
				sumMax += mx
				sumMin += mn
				worstMax = max(worstMax, mx)
				worstMin = min(worstMin, mn)
			}
			t.Logf("%-4d %-3d %-14.3f %-14.3f %-9.3f %-9.3f", rf, n, sumMax/sets, sumMin/sets, worstMax, worstMin)
		}
	}
}
