package main

import (
	"runtime/debug"

	"github.com/mcproxy/mcproxy/proxy"
)

// version is set at build time with -ldflags "-X main.version=..." (make
// build, the Dockerfile). Without it, the version comes from the binary's
// build info: the module version for `go install ...@vX.Y.Z`, else the VCS
// revision Go stamped in, else "dev".
var version string

// fullVersion is the one version string mcproxy shows everywhere: -version,
// the "version" command, "stats" and mcproxy_build_info. It leads with the
// memcached protocol level, which clients parse (see proxy.FullVersion).
func fullVersion() string { return proxy.FullVersion(buildVersion()) }

// buildVersion is mcproxy's own version, without the protocol level.
func buildVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	return versionFromBuildInfo(bi)
}

func versionFromBuildInfo(bi *debug.BuildInfo) string {
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}
