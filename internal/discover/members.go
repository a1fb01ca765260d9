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
type members struct {
	missingLimit int
	maxRemove    func(total int) int // nil: no cap
	list         map[string]Backend
	missing      map[string]int // answers in a row without the backend
}

func newMembers(missingLimit int, maxRemove func(int) int) *members {
	return &members{missingLimit: missingLimit, maxRemove: maxRemove,
		list: map[string]Backend{}, missing: map[string]int{}}
}

// apply folds a good (non-empty) answer into the list: its backends join or
// are updated at once, and those it lacks leave once missingLimit answers
// in a row have lacked them, at most maxRemove(len(list)) of them, the
// longest-missing first (ties by name, so the same answers give the same
// list). It reports whether the list changed, and the backends it kept only
// because of the cap.
func (m *members) apply(answer []Backend) (changed bool, capped int) {
	total := len(m.list)
	seen := make(map[string]bool, len(answer))
	for _, b := range answer {
		seen[b.Name] = true
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
	slices.SortFunc(leaving, func(a, b string) int {
		if d := m.missing[b] - m.missing[a]; d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	if m.maxRemove != nil {
		limit := max(m.maxRemove(total), 0)
		if len(leaving) > limit {
			capped = len(leaving) - limit
			leaving = leaving[:limit]
		}
	}
	for _, name := range leaving {
		delete(m.list, name)
		delete(m.missing, name)
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
