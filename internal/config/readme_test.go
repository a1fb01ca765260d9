package config

import (
	"bufio"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// configPage is the operators' configuration reference. Its title
// "# Configuration" is followed by the example and the table of every key,
// before its first "## " section.
const configPage = "../../docs/configuration.md"

// TestConfigPageTable holds docs/configuration.md's configuration table,
// the operators' documentation of every key, to the code: every key of
// Config has a row and every row a key; each stated default, read by the
// loader as if written in a file, is Default()'s value; each stated range
// "lo..hi" (also "≥ x", "> 0" and "At most n bytes") is what validation
// accepts, at both ends and one step outside; and the Applies column says
// "live" exactly for the keys AppliesLive reports, else "restart". A
// default, limit or live split changed in code only, or in the page only,
// fails here.
func TestConfigPageTable(t *testing.T) {
	rows := readConfigTable(t, configPage)

	var keys []string
	yamlKeys(reflect.TypeOf(Config{}), "", &keys)
	for _, k := range keys {
		if _, ok := rows[k]; !ok {
			t.Errorf("%s: the configuration table has no row for %s", configPage, k)
		}
	}
	for k := range rows {
		if !slices.Contains(keys, k) {
			t.Errorf("%s: the configuration table has a row for %s, which is not a key of Config", configPage, k)
		}
	}

	for _, k := range keys {
		row, ok := rows[k]
		if !ok {
			continue
		}
		t.Run(k, func(t *testing.T) {
			checkDefault(t, k, row.dflt)
			checkRange(t, k, row.meaning)
			checkApplies(t, k, row.applies)
		})
	}
}

// TestConfigPageExample: the YAML example at the head of
// docs/configuration.md writes out every default, as configs/local.yaml
// does (TestLoadExampleConfigs); only the addresses and backends are its
// own.
func TestConfigPageExample(t *testing.T) {
	block := yamlBlock(t, configPage, "# Configuration")
	cfg, err := Parse([]byte(block), configPage+"'s example")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Listen, want.Admin, want.Backends = cfg.Listen, cfg.Admin, cfg.Backends
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("%s's example config differs from the defaults in %v", configPage, Diff(cfg, want))
	}
}

// TestConfigPagePoolsExample: the example of the page's "Pools and
// routes" section loads, with the pools and routes it shows.
func TestConfigPagePoolsExample(t *testing.T) {
	cfg, err := Parse([]byte(yamlBlock(t, configPage, "## Pools and routes")), configPage+"'s pools example")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.PoolList()) != 3 || len(cfg.Routes) != 3 {
		t.Errorf("pools %+v, routes %+v", cfg.PoolList(), cfg.Routes)
	}
}

// TestMigrationExamples: every mcproxy config docs/migration.md shows
// loads (the twemproxy configs it converts, with their servers: lists,
// are not mcproxy's).
func TestMigrationExamples(t *testing.T) {
	const page = "../../docs/migration.md"
	data, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(data), "```yaml\n")[1:]
	n := 0
	for i, b := range blocks {
		b, _, _ = strings.Cut(b, "```")
		if strings.Contains(b, "\n  servers:\n") {
			continue
		}
		n++
		if _, err := Parse([]byte(b), fmt.Sprintf("%s's example %d", page, i+1)); err != nil {
			t.Error(err)
		}
	}
	if n < 5 {
		t.Errorf("%s: %d mcproxy examples, want the twemproxy, PHP, Ruby, Go and warm_from ones", page, n)
	}
}

// TestREADMEFirstConfig: the first config README.md shows a newcomer
// loads as it is.
func TestREADMEFirstConfig(t *testing.T) {
	const readme = "../../README.md"
	block := yamlBlock(t, readme, "## A first config")
	if _, err := Parse([]byte(block), readme+"'s first config"); err != nil {
		t.Error(err)
	}
}

// yamlBlock returns the first ```yaml block of path's section that starts
// at the heading line and ends at the next "## " heading.
func yamlBlock(t *testing.T, path, heading string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut("\n"+string(data), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("%s has no %s section", path, heading)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "```yaml\n")
	block, _, closed := strings.Cut(block, "```")
	if !ok || !closed {
		t.Fatalf("%s's %s section has no ```yaml example", path, heading)
	}
	return block
}

type tableRow struct{ dflt, applies, meaning string }

// readConfigTable returns the rows of the "| Key | Default | Applies |
// Meaning |" table between the page's "# Configuration" title and its
// first "## " section, by key.
func readConfigTable(t *testing.T, path string) map[string]tableRow {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string]tableRow{}
	section, inTable, inCode := false, false, false
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
			continue
		}
		if !inCode && (strings.HasPrefix(line, "# ") || strings.HasPrefix(line, "## ")) {
			section = line == "# Configuration"
			continue
		}
		if !section {
			continue
		}
		cells := tableCells(line)
		switch {
		case !inTable:
			inTable = len(cells) == 4 && cells[0] == "Key" && cells[1] == "Default" && cells[2] == "Applies" && cells[3] == "Meaning"
		case cells == nil:
			if len(rows) == 0 {
				t.Fatalf("%s: the configuration table has no rows", path)
			}
			return rows
		case strings.Trim(cells[0], "-") == "":
			// the |---| line under the header
		case len(cells) != 4:
			t.Errorf("%s: configuration table row with %d cells: %s", path, len(cells), line)
		default:
			key := strings.Trim(cells[0], "`")
			if _, dup := rows[key]; dup {
				t.Errorf("%s: configuration table has two rows for %s", path, key)
			}
			rows[key] = tableRow{dflt: cells[1], applies: cells[2], meaning: cells[3]}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatalf("%s: no | Key | Default | Applies | Meaning | table under # Configuration", path)
	}
	return rows
}

// tableCells splits a Markdown table row into trimmed cells; nil if line is
// not a table row. (No cell of this table holds a "|".)
func tableCells(line string) []string {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "|") || !strings.HasSuffix(line, "|") || len(line) < 2 {
		return nil
	}
	cells := strings.Split(line[1:len(line)-1], "|")
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	return cells
}

// yamlKeys lists the file's keys as the configuration page writes them: "listen",
// "ring.partitions", for the list of backends "backends" and
// "backends[].addr", and for the mapping of pools "pools" and
// "pools.<name>.hash". Sections are not keys of their own.
func yamlKeys(typ reflect.Type, prefix string, keys *[]string) {
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		name := f.Tag.Get("yaml")
		if name == "" || name == "-" {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		switch {
		case f.Type.Kind() == reflect.Struct:
			yamlKeys(f.Type, key, keys)
		case f.Type == reflect.TypeOf([]Pool(nil)):
			*keys = append(*keys, key)
			yamlKeys(f.Type.Elem(), key+".<name>", keys)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			*keys = append(*keys, key)
			yamlKeys(f.Type.Elem(), key+"[]", keys)
		default:
			*keys = append(*keys, key)
		}
	}
}

// pageKey is a key as Diff names it ("pools.main.backends[2].weight") as
// the page writes it ("pools.<name>.backends[].weight").
func pageKey(key string) string {
	if rest, ok := strings.CutPrefix(key, "pools."); ok {
		_, rest, more := strings.Cut(rest, ".")
		key = "pools"
		if more {
			key = "pools.<name>." + rest
		}
	}
	key = regexp.MustCompile(`\[\d+\]`).ReplaceAllString(key, "[]")
	// An entry added or removed ("routes[2]") is a change of the list.
	return strings.TrimSuffix(key, "[]")
}

// valueAt returns the value of key in c: "backends[].weight" is the weight
// of the first backend, "pools.<name>.hash" the hash of the first pool.
func valueAt(c Config, key string) reflect.Value {
	v := reflect.ValueOf(c)
	key = strings.Replace(key, "pools.<name>", "pools[]", 1)
	for _, name := range strings.Split(key, ".") {
		name, elem := strings.CutSuffix(name, "[]")
		v = fieldByTag(v, name)
		if elem {
			v = v.Index(0)
		}
	}
	return v
}

// testBackend is the one backend of the files built here.
const testBackend = "127.0.0.1:11311"

// fileWith writes a config file that sets key to value (written as is)
// and has one backend: a top-level one, or for a pools.<name> key one in
// pool p.
func fileWith(key, value string) string {
	if rest, ok := strings.CutPrefix(key, "pools.<name>."); ok {
		return "pools:\n  p:\n" + poolWith(rest, value, "    ")
	}
	if b, ok := strings.CutPrefix(key, "backends[]."); ok {
		if b == "addr" {
			return fmt.Sprintf("backends:\n  - {addr: %s}\n", value)
		}
		return fmt.Sprintf("backends:\n  - {addr: %s, %s: %s}\n", testBackend, b, value)
	}
	doc := "backends: [" + testBackend + "]\n"
	if r, ok := strings.CutPrefix(key, "routes[]."); ok {
		doc += fmt.Sprintf("routes:\n  - {%s: %s, pool: default}\n", r, value)
		if r == "prefix" && value != `""` {
			doc += "  - {pool: default}\n" // the last route takes the other keys
		}
		return doc
	}
	parts := strings.Split(key, ".") // sections nest: backend.tls.ca_file
	for i, section := range parts[:len(parts)-1] {
		doc += strings.Repeat("  ", i) + section + ":\n"
	}
	return doc + fmt.Sprintf("%s%s: %s\n", strings.Repeat("  ", len(parts)-1), parts[len(parts)-1], value)
}

// poolWith writes the body of a pool that sets its key (as the page
// writes it after pools.<name>.) to value, at indentation in.
func poolWith(key, value, in string) string {
	one := in + "backends: [" + testBackend + "]\n"
	if b, ok := strings.CutPrefix(key, "backends[]."); ok {
		if b == "addr" {
			return fmt.Sprintf("%sbackends:\n%s  - {addr: %s}\n", in, in, value)
		}
		return fmt.Sprintf("%sbackends:\n%s  - {addr: %s, %s: %s}\n", in, in, testBackend, b, value)
	}
	if d, ok := strings.CutPrefix(key, "discover."); ok {
		return in + "discover:\n" + discoverBase(d, in+"  ") + in + "  " + d + ": " + value + "\n"
	}
	switch key {
	case "backends":
		return in + "backends: " + value + "\n"
	case "hash", "hash_tag":
		// Keys of ketama's (the default distribution has a fixed key hash).
		return one + in + "distribution: ketama\n" + in + key + ": " + value + "\n"
	}
	if r, ok := strings.CutPrefix(key, "ring."); ok {
		return one + in + "ring:\n" + in + "  " + r + ": " + value + "\n"
	}
	return one + in + key + ": " + value + "\n"
}

// discoverBase is the body of a discover section, at indentation in,
// that the key (srv, port, ...) completes without conflict: a host lookup
// for srv and port, else an SRV lookup.
func discoverBase(key, in string) string {
	switch key {
	case "srv":
		return in + "host: mc.test\n" + in + "port: 11211\n"
	case "port":
		return in + "host: mc.test\n"
	}
	return in + "srv: _memcache._tcp.mc.test\n"
}

// fileKey is the key as messages about fileWith's file name it:
// "pools.p.backends[0].addr" for "pools.<name>.backends[].addr".
func fileKey(key string) string {
	return strings.ReplaceAll(strings.ReplaceAll(key, "<name>", "p"), "[]", "[0]")
}

// defaultOf returns the config that fileWith(key, ...) describes without
// key: what the key's default must load as.
func defaultOf(t *testing.T, key string) Config {
	t.Helper()
	var doc string
	switch {
	case strings.HasPrefix(key, "backends[]."):
		doc = fileWith("backends[].addr", testBackend)
	case strings.HasPrefix(key, "pools.<name>.backends[]."):
		doc = fileWith("pools.<name>.backends[].addr", testBackend)
	case key == "pools.<name>.hash" || key == "pools.<name>.hash_tag":
		doc = fileWith("pools.<name>.distribution", "ketama")
	case strings.HasPrefix(key, "pools.<name>.discover."):
		doc = "pools:\n  p:\n    discover:\n" + discoverBase(strings.TrimPrefix(key, "pools.<name>.discover."), "      ")
	case strings.HasPrefix(key, "pools.<name>."):
		doc = "pools:\n  p:\n    backends: [" + testBackend + "]\n"
	case strings.HasPrefix(key, "routes[]."):
		doc = "backends: [" + testBackend + "]\nroutes:\n  - {pool: default}\n"
	default:
		return Default()
	}
	c, err := Parse([]byte(doc), "readme")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkRequired checks that leaving key out is an error that names it.
func checkRequired(t *testing.T, key, cell string) {
	docs := map[string]string{
		"backends":                     "listen: " + DefaultListen + "\n",
		"backends[].addr":              "backends:\n  - {weight: 1}\n",
		"pools.<name>.backends":        "pools:\n  p: {distribution: ring}\n",
		"pools.<name>.discover.port":   "pools:\n  p:\n    discover: {host: mc.test}\n",
		"pools.<name>.backends[].addr": "pools:\n  p:\n    backends:\n      - {weight: 1}\n",
		"routes[].pool":                "backends: [" + testBackend + "]\nroutes:\n  - {}\n",
	}
	doc, ok := docs[key]
	if !ok {
		t.Fatalf("default %q: the test knows no way to leave %s out", cell, key)
	}
	if _, err := Parse([]byte(doc), "readme"); err == nil || !strings.Contains(err.Error(), fileKey(key)+": ") {
		t.Errorf("the page says %s is required; a file without it: %v", key, err)
	}
}

// backtick matches the first `code span` of a cell.
var backtick = regexp.MustCompile("`([^`]*)`")

func checkDefault(t *testing.T, key, cell string) {
	switch {
	case cell == "(required)":
		checkRequired(t, key, cell)
		return
	case cell == "the `addr`":
		// An unnamed backend is named by its address: naming another
		// backend by that address is a duplicate name.
		list := strings.TrimSuffix(key, "[].name")
		doc := fmt.Sprintf("backends:\n  - %s\n  - {name: %q, addr: 127.0.0.1:11312}\n", testBackend, testBackend)
		if list != "backends" {
			doc = "pools:\n  p:\n" + strings.ReplaceAll(doc, "\n  ", "\n      ")
			doc = strings.Replace(doc, "backends:", "    backends:", 1)
		}
		if _, err := Parse([]byte(doc), "readme"); err == nil || !strings.Contains(err.Error(), fileKey(list)+"[1].name: ") {
			t.Errorf("the page says %s defaults to the addr; a name equal to an unnamed backend's addr: %v", key, err)
		}
		return
	case strings.HasPrefix(cell, "the top-level `"):
		// The pool's key takes the top-level key's value: one that is in
		// range and not the default (3 fits ring keys and replicas).
		top := backtick.FindStringSubmatch(cell)[1]
		doc := fileWith("pools.<name>.distribution", "ring") + strings.Replace(fileWith(top, "3"), "backends: ["+testBackend+"]\n", "", 1)
		got, err := Parse([]byte(doc), "readme")
		if err != nil {
			t.Fatalf("a pool under top-level %s 3: %v", top, err)
		}
		if g, w := valueAt(got, key), valueAt(got, top); !reflect.DeepEqual(g.Interface(), w.Interface()) {
			t.Errorf("the page says %s defaults to %s; it loads as %v beside %v", key, top, g, w)
		}
		return
	case cell == "the `backend.tls` section":
		// A pool without a tls section takes backend.tls's, every key.
		doc := "backend:\n  tls: {enabled: true, server_name: mc.test, min_version: \"1.3\"}\n" +
			"pools:\n  p:\n    backends: [" + testBackend + "]\n"
		got, err := Parse([]byte(doc), "readme")
		if err != nil {
			t.Fatalf("a pool under backend.tls: %v", err)
		}
		if g, w := got.Pools[0].TLS, got.Backend.TLS; g != w || g == defaultBackendTLS() {
			t.Errorf("the page says %s defaults to backend.tls's; the pool's tls loads as %+v beside %+v", key, g, w)
		}
		return
	}
	m := backtick.FindStringSubmatch(cell)
	if m == nil {
		t.Fatalf("default %q: want the value in backticks, (required) or the `addr`", cell)
	}
	got, err := Parse([]byte(fileWith(key, m[1])), "readme")
	if err != nil {
		t.Fatalf("the page's default %s: %s does not load: %v", key, m[1], err)
	}
	// Defaults of a backend's, pool's or route's keys are what it gets
	// without them.
	want := defaultOf(t, key)
	if g, w := valueAt(got, key), valueAt(want, key); !reflect.DeepEqual(g.Interface(), w.Interface()) {
		t.Errorf("the page's default of %s is %s, which loads as %v; the code's default is %v", key, m[1], g, w)
	}
}

var (
	rangeRE       = regexp.MustCompile(`\b(\d+[a-z]*)\.\.(\d+[a-z]*)\b`)
	atLeastRE     = regexp.MustCompile(`≥ (\d+(?:\.\d+)?)`)
	atMostBytesRE = regexp.MustCompile(`At most (\d+) bytes`)
)

// checkRange checks the first range the page's text states for key.
func checkRange(t *testing.T, key, meaning string) {
	withBackend := Default()
	withBackend.Backends = []Backend{{}}
	withBackend.Pools = []Pool{{Backends: []Backend{{}}}}
	withBackend.Routes = []Route{{}}
	typ := valueAt(withBackend, key).Type()
	if m := rangeRE.FindStringSubmatch(meaning); m != nil {
		lo, hi := m[1], m[2]
		var below, above string
		switch typ {
		case reflect.TypeOf(time.Duration(0)):
			l, err1 := time.ParseDuration(lo)
			h, err2 := time.ParseDuration(hi)
			if err1 != nil || err2 != nil {
				t.Fatalf("range %s..%s: %v %v", lo, hi, err1, err2)
			}
			below, above = (l - time.Second).String(), (h + time.Second).String()
		case reflect.TypeOf(0):
			l, err1 := parseSize(lo) // plain numbers read as themselves
			h, err2 := parseSize(hi)
			if err1 != nil || err2 != nil {
				t.Fatalf("range %s..%s: %v %v", lo, hi, err1, err2)
			}
			below, above = strconv.FormatInt(l-1, 10), strconv.FormatInt(h+1, 10)
		default:
			t.Fatalf("range %s..%s of a %v: the test does not know this kind", lo, hi, typ)
		}
		accepts(t, key, lo, "the page's lower bound")
		accepts(t, key, hi, "the page's upper bound")
		refuses(t, key, below, "out of range", "one step below the page's range "+m[0])
		refuses(t, key, above, "out of range", "one step above the page's range "+m[0])
		return
	}
	if m := atLeastRE.FindStringSubmatch(meaning); m != nil {
		lo, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		accepts(t, key, m[1], "the page's lower bound")
		refuses(t, key, strconv.FormatFloat(lo-0.01, 'f', -1, 64), "", "below the page's ≥ "+m[1])
		return
	}
	if m := atMostBytesRE.FindStringSubmatch(meaning); m != nil && typ.Kind() == reflect.String {
		n, err := strconv.Atoi(m[1])
		if err != nil {
			t.Fatal(err)
		}
		accepts(t, key, strings.Repeat("n", n), "the page's "+m[0])
		refuses(t, key, strings.Repeat("n", n+1), "", "the page's "+m[0])
		return
	}
	if strings.Contains(meaning, "> 0") && typ == reflect.TypeOf(time.Duration(0)) {
		accepts(t, key, "1ns", "the page's > 0")
		refuses(t, key, "0s", "", "the page's > 0")
	}
}

// checkApplies checks the Applies cell of key against AppliesLive.
func checkApplies(t *testing.T, key, cell string) {
	want := "restart"
	if AppliesLive(key) {
		want = "live"
	}
	if cell != want {
		t.Errorf("the page says %s applies %q; AppliesLive says %q", key, cell, want)
	}
}

// accepts checks that key set to value draws no problem naming key (a
// problem of another key, such as health.timeout above a tiny
// health.interval, is not this key's range).
func accepts(t *testing.T, key, value, why string) {
	t.Helper()
	_, err := Parse([]byte(fileWith(key, value)), "readme")
	if err != nil && strings.Contains(err.Error(), fileKey(key)+": ") {
		t.Errorf("%s %s: %s: %v", key, value, why, err)
	}
}

// refuses checks that key set to value is an error naming key (and saying
// want, when given).
func refuses(t *testing.T, key, value, want, why string) {
	t.Helper()
	_, err := Parse([]byte(fileWith(key, value)), "readme")
	name := fileKey(key) + ": "
	if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), want) {
		t.Errorf("%s %s (%s) loads, or not for that reason: %v", key, value, why, err)
	}
}
