package discover

import (
	"slices"
	"strings"
)

// Backend is one backend found in DNS.
type Backend struct {
	// Name places the backend on the ring: the SRV target without its
	// trailing dot, or ip:port with host lookups. A pod that comes back on
	// a new address under the same SRV target keeps its Name, so its keys
	// stay where they are.
	Name string
	// Addr is where to connect: target:port, or ip:port.
	Addr string
	// Weight is the SRV weight (0 counts as 1), or 1 with host lookups.
	Weight int
}

// members is the backend list a Watcher delivers and how many answers in a
// row have lacked each of its backends. It is owned by the Watcher's
// goroutine.
//
// The removal cap counts over a streak of removals, not per answer: were
// it per answer, a pool whose answers keep lacking backends would shrink
// by the cap every missingLimit answers (10, 5, 3, 2, 1 at 50%), and DNS
// could empty it after all. So the first removal notes the list's size
// (base) and every name DNS then takes out (removed); the cap is
// maxRemove(base) less those still out. The streak ends when every removed
// backend is back in an answer, or when the operator reloads the config
// (resetRemovals): then the list as it is becomes the next base.
type members struct {
	missingLimit int
	maxRemove    func(total int) int // nil: no cap
	list         map[string]Backend
	missing      map[string]int  // answers in a row without the backend
	base         int             // list size before the streak's first removal; 0: no streak
	removed      map[string]bool // backends DNS took out during the streak and not yet back
}

func newMembers(missingLimit int, maxRemove func(int) int) *members {
	return &members{missingLimit: missingLimit, maxRemove: maxRemove,
		list: map[string]Backend{}, missing: map[string]int{}, removed: map[string]bool{}}
}

// resetRemovals ends the streak of removals: the cap counts afresh from
// the list as it is.
func (m *members) resetRemovals() {
	m.base = 0
	clear(m.removed)
}

// removalLimit is how many more backends may leave now: the cap on the
// list as it was before the streak, less those the streak took out.
func (m *members) removalLimit(total int) int {
	base := m.base
	if base == 0 {
		base = total
	}
	return max(m.maxRemove(base)-len(m.removed), 0)
}

// apply folds a good (non-empty) answer into the list: its backends join or
// are updated at once, and those it lacks leave once missingLimit answers
// in a row have lacked them, within the cap over the streak (see members),
// the longest-missing first (ties by name, so the same answers give the same
// list). It reports whether the list changed, and the backends it kept only
// because of the cap.
func (m *members) apply(answer []Backend) (changed bool, capped int) {
	total := len(m.list)
	seen := make(map[string]bool, len(answer))
	for _, b := range answer {
		seen[b.Name] = true
		delete(m.removed, b.Name)
		delete(m.missing, b.Name)
		if old, ok := m.list[b.Name]; !ok || old != b {
			m.list[b.Name] = b
			changed = true
		}
	}
	var leaving []string
	for name := range m.list {
		if seen[name] {
			continue
		}
		m.missing[name]++
		if m.missing[name] >= m.missingLimit {
			leaving = append(leaving, name)
		}
	}
	if len(m.removed) == 0 {
		m.base = 0 // every backend the streak took out is back
	}
	slices.SortFunc(leaving, func(a, b string) int {
		if d := m.missing[b] - m.missing[a]; d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	if m.maxRemove != nil {
		limit := m.removalLimit(total)
		if len(leaving) > limit {
			capped = len(leaving) - limit
			leaving = leaving[:limit]
		}
	}
	if len(leaving) > 0 && m.base == 0 {
		m.base = total
	}
	for _, name := range leaving {
		delete(m.list, name)
		delete(m.missing, name)
		m.removed[name] = true
		changed = true
	}
	return changed, capped
}

// snapshot is the list sorted by name, a fresh slice the receiver owns.
func (m *members) snapshot() []Backend {
	out := make([]Backend, 0, len(m.list))
	for _, b := range m.list {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Backend) int { return strings.Compare(a.Name, b.Name) })
	return out
}
