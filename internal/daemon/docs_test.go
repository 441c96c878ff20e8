package daemon_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/doccheck"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// telegrafOutput is one [[outputs.*]] table of a TOML block, read just
// enough for the README's examples: key = "string" or ["string"].
type telegrafOutput struct {
	name     string
	settings map[string]string
}

// telegrafOutputs returns the Telegraf outputs shown in the section of
// the given title of the doc at path, and the section's text.
func telegrafOutputs(t *testing.T, path, title string) ([]telegrafOutput, string) {
	t.Helper()
	section := doccheck.Section(t, path, title)
	var outs []telegrafOutput
	header := regexp.MustCompile(`^\[\[(outputs\.[a-z0-9_]+)\]\]$`)
	kv := regexp.MustCompile(`^([a-z_]+)\s*=\s*(\[?"[^"]*"\]?|true|false)\s*(#.*)?$`)
	for _, block := range regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllStringSubmatch(section, -1) {
		for _, line := range strings.Split(block[1], "\n") {
			line = strings.TrimSpace(line)
			switch {
			case line == "" || strings.HasPrefix(line, "#"):
			case header.MatchString(line):
				outs = append(outs, telegrafOutput{name: header.FindStringSubmatch(line)[1], settings: map[string]string{}})
			case kv.MatchString(line) && len(outs) > 0:
				m := kv.FindStringSubmatch(line)
				outs[len(outs)-1].settings[m[1]] = strings.Trim(m[2], `[]"`)
			default:
				t.Errorf("%s: cannot read %q in a Telegraf example", path, line)
			}
		}
	}
	return outs, section
}

// TestDocsTelegrafConfigs: the Telegraf outputs the docs show point at
// the ports and paths pginflux serves, and work against a running
// pginflux used as Telegraf uses them: the README's two, and the page on
// writing's InfluxDB 1.x, 2.x and TCP outputs.
func TestDocsTelegrafConfigs(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		path, title string
		want        []string
	}{
		{"README.md", "Sending from Telegraf", []string{"outputs.influxdb", "outputs.socket_writer"}},
		{"docs/writing.md", "Writing over HTTP and TCP", []string{"outputs.influxdb", "outputs.influxdb_v2", "outputs.socket_writer"}},
	} {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			outs, section := telegrafOutputs(t, tt.path, tt.title)
			checkTelegrafOutputs(t, outs, section, tt.want)
		})
	}
}

// checkTelegrafOutputs writes a line as each of outs would, and wants a
// row for each and every output of want among them.
func checkTelegrafOutputs(t *testing.T, outs []telegrafOutput, section string, want []string) {
	httpPort := defaultPort(t, "http-address")
	udpPort := defaultPort(t, "udp-address")
	tcpPort := ""
	if m := regexp.MustCompile(`--tcp-address :(\d+)`).FindStringSubmatch(section); m != nil {
		tcpPort = m[1]
	}

	pool, schema := pgtest.Schema(t)
	const token = "readme-token"
	args := []string{"--tcp-address", "127.0.0.1:0"}
	if strings.Contains(section, "${PGINFLUX_HTTP_TOKEN}") {
		args = append(args, "--http-token", token)
	}
	p := daemontest.Start(t, schema, args...)
	base, tcpAddr, udpAddr := p.Base, p.TCP, p.UDP
	withToken := func(s string) string { return strings.ReplaceAll(s, "${PGINFLUX_HTTP_TOKEN}", token) }
	baseURL, _ := url.Parse(base)

	seen := map[string]bool{}
	for i, o := range outs {
		seen[o.name] = true
		s := o.settings
		line := fmt.Sprintf("readme,output=o%d v=1i %d\n", i, 1_700_000_000_000_000_000+int64(i)*1000)
		switch o.name {
		case "outputs.influxdb", "outputs.influxdb_v2":
			u, err := url.Parse(s["urls"])
			if err != nil || u.Scheme != "http" || u.Port() != httpPort {
				t.Errorf("%s: urls %q, want http on pginflux's HTTP port %s", o.name, s["urls"], httpPort)
				continue
			}
			u.Host = baseURL.Host
			headers := []string{}
			if s["content_encoding"] == "gzip" {
				headers = append(headers, "Content-Encoding", "gzip")
			}
			if o.name == "outputs.influxdb" {
				// Telegraf's 1.x output: CREATE DATABASE unless skipped,
				// then /write?db= with basic auth.
				if s["skip_database_creation"] != "true" {
					q := url.Values{"q": {fmt.Sprintf("CREATE DATABASE %q", s["database"])}}.Encode()
					a := post(t, nil, u.JoinPath("query").String(), []byte(q), "Content-Type", "application/x-www-form-urlencoded",
						"Authorization", basicAuth(s["username"], withToken(s["password"])))
					if a.code != http.StatusOK {
						t.Errorf("%s: CREATE DATABASE: got %d %q", o.name, a.code, a.body)
					}
				}
				w := *u
				w.Path = path.Join(u.Path, "write")
				w.RawQuery = url.Values{"db": {s["database"]}}.Encode()
				headers = append(headers, "Authorization", basicAuth(s["username"], withToken(s["password"])))
				if a := post(t, nil, w.String(), []byte(line), headers...); a.code != http.StatusNoContent {
					t.Errorf("%s: got %d %q, want 204", o.name, a.code, a.body)
				}
			} else {
				w := *u
				w.Path = path.Join(u.Path, "/api/v2/write")
				w.RawQuery = url.Values{"org": {s["organization"]}, "bucket": {s["bucket"]}}.Encode()
				headers = append(headers, "Authorization", "Token "+withToken(s["token"]))
				if a := post(t, nil, w.String(), []byte(line), headers...); a.code != http.StatusNoContent {
					t.Errorf("%s: got %d %q, want 204", o.name, a.code, a.body)
				}
			}
		case "outputs.socket_writer":
			u, err := url.Parse(s["address"])
			switch {
			case err != nil || s["data_format"] != "influx":
				t.Errorf("socket_writer: address %q data_format %q, want influx", s["address"], s["data_format"])
			case u.Scheme == "tcp" && u.Port() == tcpPort:
				c, err := net.Dial("tcp", tcpAddr)
				if err != nil {
					t.Fatal(err)
				}
				io.WriteString(c, line)
				c.Close()
			case u.Scheme == "udp" && u.Port() == udpPort:
				daemontest.Send(t, udpAddr, line)
			default:
				t.Errorf("socket_writer: address %q, want tcp on port %s (the section's --tcp-address) or udp on %s", s["address"], tcpPort, udpPort)
			}
		default:
			t.Errorf("unexpected %s", o.name)
		}
	}
	for _, name := range want {
		if !seen[name] {
			t.Errorf("the section shows no %s", name)
		}
	}
	// TCP acknowledges nothing: wait for its row rather than count on the
	// shutdown to catch a connection that just closed.
	deadline := time.Now().Add(daemontest.Patience)
	var poll daemontest.Poller
	for count(t, pool, schema, "readme", "") < len(outs) && time.Now().Before(deadline) {
		poll.Sleep()
	}
	p.Stop(t)
	if n := count(t, pool, schema, "readme", ""); n != len(outs) {
		t.Errorf("got %d rows, want %d, one per output", n, len(outs))
	}
}

// defaultPort returns the port of the default of the flag name.
func defaultPort(t *testing.T, name string) string {
	t.Helper()
	f, _ := config.Lookup(name)
	_, port, err := net.SplitHostPort(f.Default)
	if err != nil {
		t.Fatalf("--%s's default %q: %v", name, f.Default, err)
	}
	return port
}

func basicAuth(user, password string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, password)
	return r.Header.Get("Authorization")
}

// TestDocsTableRecipes: the --create-table-sql recipes of docs/tables.md
// are, word for word, those the TimescaleDB and Citus tests run.
func TestDocsTableRecipes(t *testing.T) {
	t.Parallel()
	section := doccheck.Section(t, "docs/tables.md", "Table templates")
	recipes := strings.Join(doccheck.CodeBlocks(section, "sql"), "\n")
	for _, r := range []string{hypertableRecipe, brinRecipe, citusBySeriesID} {
		if !strings.Contains(recipes, r) {
			t.Errorf("docs/tables.md's recipes lack %q", r)
		}
	}
}

// TestDocsOwnTable runs docs/tables.md's table you create yourself, as
// written (but for TimescaleDB's line, on a server without it): pginflux
// fills its series_id, adds the field it lacks, keeps one row for a point
// written in two lines, fills the default, and warns of no missing point
// key.
func TestDocsOwnTable(t *testing.T) {
	t.Parallel()
	blocks := doccheck.CodeBlocks(doccheck.Section(t, "docs/tables.md", "Tables you create yourself"), "sql")
	if len(blocks) == 0 {
		t.Fatal("docs/tables.md shows no table you create yourself")
	}
	pool, schema := pgtest.Schema(t)
	var recipe []string
	for _, line := range strings.Split(blocks[0], "\n") {
		if !strings.Contains(line, "create_hypertable") {
			recipe = append(recipe, line)
		}
	}
	sql := strings.ReplaceAll(strings.Join(recipe, "\n"), "metrics.", pgx.Identifier{schema}.Sanitize()+".")
	if _, err := pool.Exec(t.Context(), sql); err != nil {
		t.Fatalf("the recipe: %v\n%s", err, sql)
	}
	p := daemontest.Start(t, schema)
	daemontest.Send(t, p.UDP, "cpu,host=a usage_idle=90 1000000000\n")
	pollRows(t, pool, "SELECT count(*)::text FROM "+pgx.Identifier{schema, "cpu"}.Sanitize(), "1")
	daemontest.Send(t, p.UDP, "cpu,host=a usage_user=5 1000000000\n")
	pollRows(t, pool, "SELECT concat_ws('|', host, usage_idle, usage_user, note, series_id IS NOT NULL) FROM "+pgx.Identifier{schema, "cpu"}.Sanitize(),
		"a|90|5|from telegraf|t")
	p.Stop(t)
	if strings.Contains(p.Log.String(), "no point key") {
		t.Errorf("pginflux found no point key in the recipe's table:\n%s", p.Log)
	}
}
