package proxy

// FullVersion is the version string mcproxy shows everywhere, given its own
// version v: "<ProtocolLevel>-mcproxy-<v>", e.g. "1.6.0-mcproxy-v0.3.1". The
// "version" command answers it after "VERSION ", and "stats" reports it as
// version, as memcached reports the same string in both places.
func FullVersion(v string) string { return ProtocolLevel + "-mcproxy-" + v }

// ProtocolLevel is the memcached release whose text protocol mcproxy
// speaks. "version" leads with it because clients parse the reply as
// major.minor.patch (libmemcached calls anything else malformed) and some
// enable features by it.
const ProtocolLevel = "1.6.0"
