package config

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// describeDatabase checks the connection string, which came from from
// (--database-url, or the variable that set it), and returns a
// description of it without secrets.
func describeDatabase(connString, from string) (string, error) {
	pc, err := pgxpool.ParseConfig(connString)
	if err != nil {
		if connString == "" {
			return "", fmt.Errorf("the PG* environment variables (--database-url is empty): %s", ConnStringProblem(connString, err))
		}
		return "", fmt.Errorf("%s: not a valid connection string: %s", from, ConnStringProblem(connString, err))
	}
	cc := pc.ConnConfig
	host := cc.Host
	if !strings.HasPrefix(host, "/") {
		host = net.JoinHostPort(host, strconv.Itoa(int(cc.Port)))
	} else {
		host = fmt.Sprintf("%s (port %d)", host, cc.Port)
	}
	return fmt.Sprintf("user=%s database=%s host=%s", cc.User, cc.Database, host), nil
}

// ConnStringProblem says what is wrong with connString, given err from
// pgx's ParseConfig, without repeating the string or any value in it:
// a malformed string may hide a password from any redaction. Quoted
// values in pgx's reason are replaced by "…", except single characters
// that are not letters or digits (such as "=").
func ConnStringProblem(connString string, err error) string {
	reason := "not a PostgreSQL URL or key=value connection string"
	var pce *pgconn.ParseConfigError
	if errors.As(err, &pce) {
		// pgx says "cannot parse `<the string, password hidden>`: <msg>
		// (<cause>)"; keep msg and the cause, drop the string.
		prefix := pgconn.NewParseConfigError(pce.ConnString, "", nil).Error()
		msg := strings.TrimPrefix(pce.Error(), prefix)
		if cause := errors.Unwrap(pce); cause != nil {
			msg = strings.TrimSuffix(msg, " ("+cause.Error()+")")
			var num *strconv.NumError
			if errors.As(cause, &num) {
				cause = num.Err // without the value it quotes
			}
			msg += ": " + cause.Error()
		}
		reason = hideQuoted(msg)
	}
	isURL := strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://")
	switch {
	case isURL && suspectUserinfo(connString):
		reason += " (in a URL, write / ? # @ : % and spaces in a user name or password percent-encoded: %2F %3F %23 %40 %3A %25 %20)"
	case !isURL && connString != "" && !strings.Contains(connString, "="):
		reason += " (a URL starts with postgres://; a key=value string is like host=db dbname=app)"
	}
	return reason
}

var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// hideQuoted replaces every Go-quoted value in s by "…", except a single
// character that is neither a letter nor a digit.
func hideQuoted(s string) string {
	return quoted.ReplaceAllStringFunc(s, func(q string) string {
		v, err := strconv.Unquote(q)
		if err == nil && len([]rune(v)) == 1 && !strings.ContainsAny(strings.ToLower(v), "abcdefghijklmnopqrstuvwxyz0123456789") {
			return q
		}
		return `"…"`
	})
}

// suspectUserinfo reports whether the user name and password of URL s
// hold characters that must be percent-encoded there.
func suspectUserinfo(s string) bool {
	_, rest, _ := strings.Cut(s, "://")
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return false
	}
	ui := rest[:at]
	if strings.ContainsAny(ui, "/?#@ ") || strings.Count(ui, ":") > 1 {
		return true
	}
	for i := 0; i < len(ui); i++ {
		if ui[i] == '%' && (i+2 >= len(ui) || !isHex(ui[i+1]) || !isHex(ui[i+2])) {
			return true
		}
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
