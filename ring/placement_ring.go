package ring

// ringPlacement is the Placement of DistRing: a Ring, unchanged, so every
// key stays where today's proxy puts it. Its AppendLocations continues from
// the key's partition to the owners of the following partitions, so a
// key's copies follow the ring's own assignment, which a backend change
// moves only in part.
type ringPlacement struct {
	r    *Ring
	tag  hashTag
	opts PlacementOptions
}

func newRingPlacement(servers []Server, o PlacementOptions, tag hashTag) (*ringPlacement, error) {
	ms := make([]Member, len(servers))
	for i, s := range servers {
		ms[i] = ringMember(identity(s), s.Weight)
	}
	r, err := New(ms, o.Ring)
	if err != nil {
		return nil, err
	}
	return &ringPlacement{r: r, tag: tag, opts: o}, nil
}

// ringMember makes a Member of a backend's identity; the one place this
// file names Member's identity field.
func ringMember(id string, weight int) Member { return Member{Name: id, Weight: weight} }

// RingPlacement returns r as a Placement, with no hash tag: for callers
// that already hold a Ring.
func RingPlacement(r *Ring, cfg Config) Placement {
	// A config New refused could not have built r; keep it as given then.
	if c, err := cfg.WithDefaults(); err == nil {
		cfg = c
	}
	return &ringPlacement{r: r, opts: PlacementOptions{Distribution: DistRing, Ring: cfg}}
}

// Locate implements Placement.
func (p *ringPlacement) Locate(key []byte) int { return p.r.Locate(p.tag.apply(key)) }

// AppendLocations implements Placement: the owner of the key's partition,
// then the owners of the partitions after it, each once.
func (p *ringPlacement) AppendLocations(dst []int, key []byte, n int) []int {
	r := p.r
	part := hashKey(p.tag.apply(key)) % r.parts
	start := len(dst)
	for step := uint64(0); step < r.parts && len(dst)-start < n; step++ {
		dst = appendDistinct(dst, start, int(r.owner[part]))
		if part++; part == r.parts {
			part = 0
		}
	}
	return dst
}

// Len implements Placement.
func (p *ringPlacement) Len() int { return p.r.Len() }

// Options implements Placement.
func (p *ringPlacement) Options() PlacementOptions { return p.opts }
