package config

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestOneLineErrors: every bad flag or variable is reported in one line
// that names it and says what is wrong in pginflux's words, not in those
// of strconv or slog, and nothing is written to out.
func TestOneLineErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{name: "unknown flag", args: []string{"--no-such-flag"}, want: "unknown flag --no-such-flag (pginflux --help lists the flags)"},
		{name: "flag without its value", args: []string{"--schema"}, want: "--schema needs a value"},
		{name: "log level", args: []string{"--log-level", "loud"}, want: `--log-level: "loud" is not one of debug, info, warn, error`},
		{name: "log level from the environment", env: map[string]string{"PGINFLUX_LOG_LEVEL": "verbose"}, want: `PGINFLUX_LOG_LEVEL: "verbose" is not one of debug, info, warn, error`},
		{name: "boolean flag", args: []string{"--pprof=yes"}, want: `--pprof: "yes" is not a boolean (true or false)`},
		{name: "boolean variable", env: map[string]string{"PGINFLUX_SCHEMA_FROM_DB": "on"}, want: `PGINFLUX_SCHEMA_FROM_DB: "on" is not a boolean (true or false)`},
		{name: "database URL, bad port", args: []string{"--database-url", "postgres://app:s3cr3tpw@db:notaport/appdb"}, want: "--database-url: not a valid connection string: invalid port"},
		{name: "database URL, space in password", args: []string{"--database-url", "postgres://app:s3cr3t pw@db/appdb"},
			want: "--database-url: not a valid connection string: failed to parse as URL: unexpected spaces found in password, use percent-encoded spaces (%20) instead " +
				"(in a URL, write / ? # @ : % and spaces in a user name or password percent-encoded: %2F %3F %23 %40 %3A %25 %20)"},
		{name: "database URL, slash in password", env: map[string]string{"PGINFLUX_DATABASE_URL": "postgres://app:s3cr/3tpw@db/appdb"},
			want: "PGINFLUX_DATABASE_URL: not a valid connection string: invalid port (in a URL, write / ? # @ : % and spaces in a user name or password percent-encoded: %2F %3F %23 %40 %3A %25 %20)"},
		{name: "database URL, a host name alone", env: map[string]string{"DATABASE_URL": "db.example.com"},
			want: "DATABASE_URL: not a valid connection string: failed to parse as keyword/value: invalid keyword/value (a URL starts with postgres://; a key=value string is like host=db dbname=app)"},
		{name: "database key=value, unterminated quote", args: []string{"--database-url", "host=db password='s3cr3tpw"},
			want: "--database-url: not a valid connection string: failed to parse as keyword/value: unterminated quoted string in connection info string"},
		{name: "database URL, bad number", args: []string{"--database-url", "postgres://db/app?connect_timeout=s3cr3tpw"},
			want: "--database-url: not a valid connection string: invalid connect_timeout: invalid syntax"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := Parse(tt.args, env(tt.env), &out)
			if err == nil {
				t.Fatal("got no error")
			}
			if err.Error() != tt.want {
				t.Errorf("got  %s\nwant %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the error shows the password: %v", err)
			}
			if out.Len() > 0 {
				t.Errorf("Parse wrote %q", out.String())
			}
		})
	}
}

// TestDatabaseFromPGVariables: with no connection string, a bad PG*
// variable is named as the source, not --database-url.
func TestDatabaseFromPGVariables(t *testing.T) {
	t.Setenv("PGPORT", "notaport")
	_, err := Parse(nil, env(nil), &bytes.Buffer{})
	want := "the PG* environment variables (--database-url is empty): invalid port"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestHideQuoted(t *testing.T) {
	tests := []struct{ in, want string }{
		{in: `missing "=" after "s3cr3t" in connection info string`, want: `missing "=" after "…" in connection info string`},
		{in: `invalid character " " in host name`, want: `invalid character " " in host name`},
		{in: `invalid min_protocol_version: "x"`, want: `invalid min_protocol_version: "…"`},
		{in: `a "quoted \"escaped\" value" here`, want: `a "…" here`},
		{in: "no quotes", want: "no quotes"},
	}
	for _, tt := range tests {
		if got := hideQuoted(tt.in); got != tt.want {
			t.Errorf("hideQuoted(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestVersionHasNoEnvironmentTwin: PGINFLUX_VERSION, which images set
// to their own version, neither stops pginflux nor turns --version on.
func TestVersionHasNoEnvironmentTwin(t *testing.T) {
	for _, v := range []string{"1.2.3", "true"} {
		c, err := Parse(nil, env(map[string]string{"PGINFLUX_VERSION": v}), &bytes.Buffer{})
		if err != nil {
			t.Fatalf("PGINFLUX_VERSION=%s: %v", v, err)
		}
		if c.Version {
			t.Errorf("PGINFLUX_VERSION=%s: got Version true, want false", v)
		}
	}
	c, err := Parse([]string{"--version"}, env(map[string]string{"PGINFLUX_VERSION": "1.2.3"}), &bytes.Buffer{})
	if err != nil || !c.Version {
		t.Errorf("--version: got %v, %v; want Version true", c.Version, err)
	}
}

// TestFlagsAnywhere: an argument among flags is an *ArgumentError, and
// flags after it count (they are parsed, not taken as arguments).
func TestFlagsAnywhere(t *testing.T) {
	_, err := Parse([]string{"--schema", "a", "extra", "--storage", "xml"}, env(nil), &bytes.Buffer{})
	var arg *ArgumentError
	if !errors.As(err, &arg) || arg.Arg != "extra" {
		t.Fatalf("got %v, want an *ArgumentError for extra", err)
	}
	if got, want := err.Error(), `unexpected argument "extra" (flags start with --)`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	var out bytes.Buffer
	if _, err := Parse([]string{"--schema", "a", "--help"}, env(nil), &out); !errors.Is(err, ErrHelp) || !strings.Contains(out.String(), "\n  --schema schema\n") {
		t.Errorf("--help after a flag: got %v and %q", err, out.String())
	}
}
