package proxy

// FullVersion is the version string mcproxy shows everywhere, given its own
// version v: "<ProtocolLevel>-mcproxy-<v>", e.g. "1.6.0-mcproxy-v0.3.1". The
// "version" command answers it after "VERSION ", and "stats" reports it as
// version, as memcached reports the same string in both places.
func FullVersion(v string) string { return ProtocolLevel + "-mcproxy-" + v }
