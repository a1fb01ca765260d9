package ring

import (
	"fmt"
	"strconv"

	"github.com/buraksezer/consistent"
)

// share is one library member: one unit of a backend's weight.
type share struct {
	name    string
	backend int // index into Ring.members
}

var _ consistent.Member = share{}

// String implements consistent.Member. The name is all the library hashes.
func (s share) String() string { return s.name }

// shareName names the i-th share of the member named name. Share 0 is the
// bare name so that a weight-1 backend is simply its name on the ring, and
// share i is "name#i" so that raising a weight adds shares without renaming the ones
// already placed. This naming decides placement; see the package doc.
func shareName(name string, i int) string {
	if i == 0 {
		return name
	}
	return name + "#" + strconv.Itoa(i)
}

// expand checks members, normalises their weights and turns them into
// library members, in member order.
func expand(members []Member, replication int) ([]Member, []consistent.Member, error) {
	if len(members) == 0 {
		return nil, nil, ErrNoMembers
	}
	out := make([]Member, len(members))
	seenMember := make(map[string]bool, len(members))
	seenName := make(map[string]bool, len(members))
	var shares []consistent.Member
	for i, m := range members {
		if m.Name == "" {
			return nil, nil, fmt.Errorf("ring: member %d has an empty name", i)
		}
		if seenMember[m.Name] {
			return nil, nil, fmt.Errorf("ring: duplicate member %q", m.Name)
		}
		seenMember[m.Name] = true
		w := m.Weight
		if w == 0 {
			w = DefaultWeight
		}
		if w < MinWeight || w > MaxWeight {
			return nil, nil, fmt.Errorf("ring: member %q has weight %d, want %d..%d", m.Name, m.Weight, MinWeight, MaxWeight)
		}
		out[i] = Member{Name: m.Name, Weight: w}
		for j := 0; j < w; j++ {
			name := shareName(m.Name, j)
			// Only possible with a '#' in a name ("a#1" next to "a" of
			// weight 2); two backends under one library name would silently
			// share partitions.
			if seenName[name] {
				return nil, nil, fmt.Errorf("ring: share name %q of member %q collides with another member", name, m.Name)
			}
			seenName[name] = true
			shares = append(shares, share{name: name, backend: i})
		}
	}
	if n := int64(len(shares)); n*n*int64(replication) > maxBuildWork {
		return nil, nil, fmt.Errorf("ring: %d shares (sum of weights) at replication factor %d are too slow to build; lower the weights or the replication factor", n, replication)
	}
	return out, shares, nil
}
