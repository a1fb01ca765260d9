package ring

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// The expected values below were computed once from this implementation.
// They pin the whole placement contract: the key hash, the partition hash
// and distribution inside consistent v1.0.0, the share naming of weights and
// the defaults. If this test fails, every deployed proxy would move keys on
// upgrade: change the expectations only on purpose, and say so in the
// release notes.

var pinnedKeys = []string{"foo", "bar", "baz", "user:1001", "session:8f14e45f", "product/42/price", "a", "key:999999"}

func TestPinnedMappings(t *testing.T) {
	weighted := []Member{
		{Name: "10.0.0.1:11211"},
		{Name: "10.0.0.2:11211", Weight: 2},
		{Name: "10.0.0.3:11211", Weight: 3},
	}
	tests := []struct {
		name        string
		members     []Member
		want        []string // owner of pinnedKeys[i]
		partitions  []int    // partitions per member
		fingerprint uint64   // xxhash of the whole owner table
	}{
		{
			name:    "equal",
			members: backends(3), // 10.0.0.1:11211 .. 10.0.0.3:11211
			want: []string{
				"10.0.0.1:11211", "10.0.0.3:11211", "10.0.0.3:11211", "10.0.0.3:11211",
				"10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.2:11211", "10.0.0.3:11211",
			},
			partitions:  []int{2946, 2688, 2285},
			fingerprint: 0x2b0997006cbfe6e9,
		},
		{
			name:    "weighted 1,2,3",
			members: weighted,
			want: []string{
				"10.0.0.2:11211", "10.0.0.2:11211", "10.0.0.3:11211", "10.0.0.3:11211",
				"10.0.0.1:11211", "10.0.0.3:11211", "10.0.0.2:11211", "10.0.0.3:11211",
			},
			partitions:  []int{1464, 2620, 3835},
			fingerprint: 0x2d6b5fca9545f492,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustNew(t, tt.members, Config{})
			for i, k := range pinnedKeys {
				if got := r.LocateName([]byte(k)); got != tt.want[i] {
					t.Errorf("LocateName(%q) = %s, pinned %s", k, got, tt.want[i])
				}
			}
			if got := partitionCounts(r); !slices.Equal(got, tt.partitions) {
				t.Errorf("partitions per member = %v, pinned %v", got, tt.partitions)
			}
			if got := tableFingerprint(r); got != tt.fingerprint {
				t.Errorf("owner table fingerprint = %#x, pinned %#x", got, tt.fingerprint)
			}
		})
	}
}

// tableFingerprint hashes the partition -> member table, so that a change
// of a single partition's owner is caught, not only changes that happen to
// hit one of the pinned keys.
func tableFingerprint(r *Ring) uint64 {
	b := make([]byte, 4*len(r.owner))
	for i, o := range r.owner {
		binary.LittleEndian.PutUint32(b[4*i:], o)
	}
	return xxhash.Sum64(b)
}
