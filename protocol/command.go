package protocol

// Op is a text-protocol command.
type Op uint8

// The commands mcproxy understands.
const (
	OpNone Op = iota
	OpGet
	OpGets
	OpGat
	OpGats
	OpSet
	OpAdd
	OpReplace
	OpAppend
	OpPrepend
	OpCas
	OpIncr
	OpDecr
	OpTouch
	OpDelete
	OpFlushAll
	OpVersion
	OpStats
	OpVerbosity
	OpQuit
	// The meta commands (mg, ms, md, ma, mn, me).
	OpMetaGet
	OpMetaSet
	OpMetaDelete
	OpMetaArithmetic
	OpMetaNoop
	OpMetaDebug
	// OpLruCrawler is lru_crawler; what it asks is in Request.Crawler.
	OpLruCrawler
	// NumOps is the number of Op values, for tables indexed by Op.
	NumOps
)

var opNames = [NumOps]string{
	OpNone: "none", OpGet: "get", OpGets: "gets", OpGat: "gat", OpGats: "gats",
	OpSet: "set", OpAdd: "add", OpReplace: "replace", OpAppend: "append",
	OpPrepend: "prepend", OpCas: "cas", OpIncr: "incr", OpDecr: "decr",
	OpTouch: "touch", OpDelete: "delete", OpFlushAll: "flush_all",
	OpVersion: "version", OpStats: "stats", OpVerbosity: "verbosity", OpQuit: "quit",
	OpMetaGet: "mg", OpMetaSet: "ms", OpMetaDelete: "md", OpMetaArithmetic: "ma",
	OpMetaNoop: "mn", OpMetaDebug: "me", OpLruCrawler: "lru_crawler",
}

// String returns the command's name as the client writes it.
func (o Op) String() string {
	if o < NumOps {
		return opNames[o]
	}
	return "unknown"
}

// IsRetrieval reports whether o reads items (get, gets, gat, gats). Such
// commands may carry many keys and answer a failed backend with misses.
func (o Op) IsRetrieval() bool { return o >= OpGet && o <= OpGats }

// IsStorage reports whether o is followed by a data block.
func (o Op) IsStorage() bool { return o >= OpSet && o <= OpCas }

// HasKey reports whether o addresses a key and so is routed by it.
func (o Op) HasKey() bool {
	return o >= OpGet && o <= OpDelete || o.IsMeta() && o != OpMetaNoop
}

// IsMeta reports whether o is a meta command; its flags are in
// Request.Meta.
func (o Op) IsMeta() bool { return o >= OpMetaGet && o <= OpMetaDebug }

// HasData reports whether o is followed by a data block the caller must
// read with ReadData (or skip with DiscardData): a storage command or ms.
func (o Op) HasData() bool { return o.IsStorage() || o == OpMetaSet }

// Request is one parsed client command. Byte slices point into the
// RequestReader's buffer and are valid only until its next call.
type Request struct {
	Op Op
	// Keys holds every key of a retrieval and the single key of any other
	// keyed command.
	Keys [][]byte
	// Flags, Exptime and Bytes are the storage fields; Exptime is also the
	// expiry of touch, gat and gats. Bytes excludes the data block's CRLF.
	Flags   uint32
	Exptime int32
	Bytes   int
	// Cas is the compare-and-swap unique of a cas command.
	Cas uint64
	// Delta is the amount of incr and decr.
	Delta uint64
	// Delay is the optional delay of flush_all; HasDelay tells whether the
	// client gave one.
	Delay    int32
	HasDelay bool
	// NoReply is set when the command ends with "noreply": memcached then
	// sends nothing back for it, not even an error.
	NoReply bool
	// Args holds the arguments of stats.
	Args [][]byte
	// Meta holds the flags of a meta command, nil for any other. Keys[0] of
	// a meta command is its key decoded (base64 with the b flag), the bytes
	// it hashes on; Meta.KeyToken is the key as the client sent it. For a
	// meta command Exptime is T, Flags is F, Cas is C, Delta is D (1 when
	// ma has none) and Bytes is ms's data length. NoReply is never set for
	// a meta command: its quiet mode (Meta.Quiet) hides only some replies
	// and never an error.
	Meta *MetaRequest
	// Crawler is what an lru_crawler command asks (lru_crawler.go).
	Crawler CrawlerRequest
}

// Key returns the first key, or nil for a command without keys.
func (r *Request) Key() []byte {
	if len(r.Keys) == 0 {
		return nil
	}
	return r.Keys[0]
}

func (r *Request) reset() {
	keys, args := r.Keys[:0], r.Args[:0]
	*r = Request{Keys: keys, Args: args}
}
