package main

import (
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/pginflux/pginflux/internal/devtools/pgcluster"
)

// sampleLine is the line the how-to suggests sending.
const sampleLine = "cpu,host=a,cpu=cpu0 usage_idle=95.9,usage_user=2.0 1574753954000000000"

// printHowTo prints copy-pasteable commands to send pginflux a line and
// query what it wrote, for any POSIX shell. child is the command line of
// pginflux: its binary, to send with, and its arguments, to find the
// UDP address and schema it will use.
func printHowTo(w io.Writer, c *pgcluster.Cluster, dir string, port int, child []string, getenv func(string) string) {
	binary, args := child[0], child[1:]
	psqlHost := "127.0.0.1"
	where := fmt.Sprintf("127.0.0.1:%d", port)
	if port == 0 {
		psqlHost, port, where = c.SocketDir(), 5432, "unix socket in "+c.SocketDir()
	}
	durability := "durable: fsync on"
	if !c.Durable() {
		durability = "NOT durable: fsync, synchronous_commit, full_page_writes off"
	}
	fmt.Fprintf(w, "pginflux dev: PostgreSQL running in %s (%s, user postgres, no password; %s)\n", dir, where, durability)
	fmt.Fprintf(w, "pginflux dev: its data stays there between runs; to start afresh, stop and rm -rf %s\n", shellWord(dir))

	udp := setting(args, "udp-address", getenv, ":8089")
	if host, port, ok := udpTarget(udp); ok {
		fmt.Fprintf(w, "send a line:  %s send --address %s '%s'\n", shellWord(binary), shellWord(net.JoinHostPort(host, port)), sampleLine)
	} else {
		fmt.Fprintf(w, "send a line:  UDP is off (--udp-address %q)\n", udp)
	}
	schema := setting(args, "schema", getenv, "metrics")
	query := strings.ReplaceAll("select * from "+sqlIdent(schema)+".cpu", "'", `'\''`)
	fmt.Fprintf(w, "query it:     psql -h %s -p %d -U postgres -c '%s'\n", psqlHost, port, query)
}

// setting returns the value of pginflux flag name as the child will see
// it: from its arguments, else from PGINFLUX_<NAME>, else def.
func setting(args []string, name string, getenv func(string) string, def string) string {
	if v := flagValue(args, name); v != nil {
		return *v
	}
	if v := getenv("PGINFLUX_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))); v != "" {
		return v
	}
	return def
}

// flagValue returns the value of flag name in args (-name v, --name v,
// -name=v, --name=v; the last one wins, as with package flag), or nil.
func flagValue(args []string, name string) *string {
	var found *string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		f, ok := strings.CutPrefix(a, "--")
		if !ok {
			if f, ok = strings.CutPrefix(a, "-"); !ok {
				continue
			}
		}
		if k, v, hasValue := strings.Cut(f, "="); hasValue {
			if k == name {
				found = &v
			}
		} else if f == name && i+1 < len(args) {
			v := args[i+1]
			found = &v
			i++
		}
	}
	return found
}

// udpTarget turns a listen address into the host and port to send to.
func udpTarget(addr string) (host, port string, ok bool) {
	if addr == "" {
		return "", "", false
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", false
	}
	if p, err := net.LookupPort("udp", port); err == nil {
		port = strconv.Itoa(p)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return host, port, true
}

var plainWord = regexp.MustCompile(`^[A-Za-z0-9_./:@%+=,\[\]-]+$`)

// shellWord quotes s for a POSIX shell when it needs it.
func shellWord(s string) string {
	if plainWord.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var plainIdent = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// sqlIdent quotes a schema name for the psql example when needed.
func sqlIdent(s string) string {
	if plainIdent.MatchString(s) {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
