// Package ring maps a memcached key to the backend that owns it.
//
// The mapping is a consistent hash ring with bounded loads
// (github.com/buraksezer/consistent v1.0.0), hashed with xxhash
// (github.com/cespare/xxhash/v2). Consistent hashing is what lets an
// operator add, remove or eject one backend and move only about that
// backend's share of the keys; the bounded load keeps any backend from
// owning more than Load times its fair share of the key space.
//
// # How a key is placed
//
// The key space is cut into Config.Partitions partitions: a key lives in
// partition xxhash(key) mod Partitions. When a Ring is built, the library
// assigns every partition to one backend, walking the ring clockwise from
// the partition's hash and skipping backends that already hold their
// ceil(Partitions/shares*Load) partitions. New copies that assignment into a
// flat table, so Locate is one hash, one modulo and one slice index: no lock,
// no allocation, no call into the library.
//
// # Weights
//
// The library has no weights. A backend of weight w becomes w library
// members ("shares") named
//
//	name, name#1, name#2, ..., name#(w-1)
//
// so weight 1 is the bare name and raising a weight from w to w+1 only
// adds the share name#w: the backend keeps every partition it had (unless
// the tighter load bound pushes a few off) and gains about 1/(total shares)
// of the keys. Each share is placed on the ring as ReplicationFactor points
// hashed from "i:name" (the library's naming, i = 0..ReplicationFactor-1),
// and the load bound applies per share, so a weight-2 backend may own up to
// twice the partitions of a weight-1 one.
//
// # Stability contract
//
// The owner of a key depends only on the set of (Name, Weight) pairs and the
// Config: not on the order of the members passed to New (barring a 64-bit
// hash collision between two ring points), not on the process, not on the
// platform. Two proxies with the same backend list agree on every key, and a
// restart keeps every key where it was. The share naming above, the key hash
// (xxhash64 of the raw key bytes), the partition hash (xxhash of the
// partition ID as 8 little-endian bytes, inside the library) and the
// distribution algorithm of consistent v1.0.0 are therefore part of the
// contract; the pinned-mapping test fails if any of them changes.
package ring
