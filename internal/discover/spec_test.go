package discover

import (
	"strings"
	"testing"
	"time"
)

func TestSpecValidateNamesTheField(t *testing.T) {
	for _, c := range []struct {
		spec Spec
		want string // "" valid, else a part of the message
	}{
		{Spec{SRV: "_memcache._tcp.mc.default.svc.cluster.local"}, ""},
		{Spec{Host: "mc.default.svc", Port: 11211, Interval: time.Second, Resolver: "127.0.0.1:8600"}, ""},
		{Spec{}, "one of srv and host"},
		{Spec{SRV: "a.b", Host: "c.d", Port: 1}, "set only one"},
		{Spec{SRV: "a.b", Port: 11211}, "port 11211"},
		{Spec{Host: "a.b"}, "port 0"},
		{Spec{Host: "a.b", Port: 70000}, "port 70000"},
		{Spec{Host: "a.b:11211", Port: 1}, "host \"a.b:11211\""},
		{Spec{SRV: "a..b"}, "srv \"a..b\": empty label"},
		{Spec{SRV: "a.b", Interval: -time.Second}, "interval"},
		{Spec{SRV: "a.b", LookupTimeout: -time.Second}, "lookup_timeout"},
		{Spec{SRV: "a.b", MissingLimit: -1}, "missing_limit"},
		{Spec{SRV: "a.b", Resolver: "127.0.0.1"}, "resolver \"127.0.0.1\""},
		{Spec{SRV: "a.b", Resolver: ":53"}, "resolver \":53\": missing host"},
		{Spec{SRV: "a.b", Resolver: "127.0.0.1:dns"}, "resolver \"127.0.0.1:dns\""},
	} {
		err := c.spec.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.spec, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: error %v, want one containing %q", c.spec, err, c.want)
		}
	}
	d := Spec{SRV: "a.b"}.WithDefaults()
	if d.Interval != DefaultInterval || d.LookupTimeout != DefaultLookupTimeout || d.MissingLimit != DefaultMissingLimit {
		t.Errorf("defaults %+v", d)
	}
}
