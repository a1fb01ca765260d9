package config

import (
	"strings"
	"testing"
)

// TestSyntaxErrorsNameLineAndKey: a malformed file is reported at the line
// to fix, with the dotted key written there, not at the YAML library's line
// (which for these files is the enclosing block or a blank line).
func TestSyntaxErrorsNameLineAndKey(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       string
	}{
		{"key indented too far", "listen: 127.0.0.1:11211\nhealth:\n  interval: 1s\n   timeout: 2s\n",
			"line 4: health.timeout: malformed YAML: mapping values are not allowed in this context"},
		{"key indented too little", "listen: 127.0.0.1:11211\nhealth:\n  interval: 1s\n timeout: 2s\n",
			"line 4: health.timeout: malformed YAML: "},
		{"list item indented too far", "listen: a:1\nbackends:\n  - addr: 127.0.0.1:1\n    weight: 1\n   - addr: 127.0.0.1:2\n",
			"line 5: backends[1].addr: malformed YAML: "},
		{"after blank lines", "backends:\n  - addr: 127.0.0.1:1\n\n\n  weight: 1\n",
			"line 5: backends.weight: malformed YAML: "},
		{"unclosed flow list", "listen: a:1\nhealth:\n  interval: [1s\n  timeout: 2s\n",
			"line 3: health.interval: malformed YAML: "},
		{"tab", "listen: a:1\nlimits:\n\tmax_connections: 1\n",
			"line 3: limits.max_connections: malformed YAML: "},
		{"list at the key's indentation", "backends:\n- addr: 127.0.0.1:1\n- addr: 127.0.0.1:2\n   weight: 2\n",
			"line 4: backends[1].weight: malformed YAML: "},
		{"unclosed quote", "backends: [127.0.0.1:1]\nlisten: \"127.0.0.1:11211\nadmin: x\n",
			"line 2: listen: malformed YAML: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "bad.yaml")
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", tc.yaml)
			}
			want := "load config bad.yaml: " + tc.want
			if !strings.HasPrefix(err.Error(), want) || tc.name == "tab" && !strings.Contains(err.Error(), "has a tab") {
				t.Errorf("Parse:\n got %q\nwant prefix %q", err, want)
			}
		})
	}
}
