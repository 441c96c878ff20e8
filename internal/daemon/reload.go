package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"
	"unicode"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/sink"
)

// configFileEnv names the environment variable that points at a file of
// settings in the PGINFLUX_* form (KEY=VALUE lines, as a systemd
// EnvironmentFile). It is read over the environment at start and again on
// every SIGHUP, which is how a running pginflux learns new settings: the
// environment of a running process never changes.
const configFileEnv = "PGINFLUX_CONFIG_FILE"

// maxConfigFile bounds what is read of the file; a settings file is a few
// hundred bytes.
const maxConfigFile = 1 << 20

// testHookReloaded, when set, is called after each reload that a SIGHUP
// started, with its error.
var testHookReloaded func(err error)

// parseConfig is config.Parse with the file named by PGINFLUX_CONFIG_FILE,
// when set, over the environment. Flags on the command line still win.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (config.Config, error) {
	merged, err := withConfigFile(getenv)
	if err != nil {
		return config.Config{}, err
	}
	return config.Parse(args, merged, out)
}

// withConfigFile returns getenv with the settings of the file named by
// PGINFLUX_CONFIG_FILE over it, or getenv itself when the variable is not
// set. A variable set in the file, even to "", hides the environment's.
func withConfigFile(getenv func(string) string) (func(string) string, error) {
	path := getenv(configFileEnv)
	if path == "" {
		return getenv, nil
	}
	vars, err := readConfigFile(path)
	if err != nil {
		return nil, err
	}
	return func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		return getenv(k)
	}, nil
}

// readConfigFile reads KEY=VALUE lines as systemd reads an
// EnvironmentFile: blank lines and lines starting with # or ; are
// skipped, an optional "export " is dropped, white space around the key
// and the value is trimmed, and a value wholly in single or double
// quotes loses them. The error names the file and the line, never a
// value, which may be a password.
func readConfigFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", configFileEnv, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", configFileEnv, path, err)
	}
	if len(data) > maxConfigFile {
		return nil, fmt.Errorf("%s: %s is larger than %d bytes", configFileEnv, path, maxConfigFile)
	}
	vars := make(map[string]string)
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxConfigFile+1)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		key, val, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || !validEnvName(key) {
			errs = append(errs, fmt.Errorf("%s line %d: not KEY=VALUE", path, n))
			continue
		}
		val = strings.TrimSpace(val)
		if len(val) >= 2 && (val[0] == '"' || val[0] == '\'') && val[len(val)-1] == val[0] {
			val = val[1 : len(val)-1]
		}
		vars[key] = val
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("read %s: %w", path, err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%s: %w", configFileEnv, err)
	}
	return vars, nil
}

func validEnvName(s string) bool {
	if s == "" || unicode.IsDigit(rune(s[0])) {
		return false
	}
	for _, r := range s {
		if r != '_' && (r > unicode.MaxASCII || !unicode.IsLetter(r) && !unicode.IsDigit(r)) {
			return false
		}
	}
	return true
}

// reloader applies a configuration read again to the running pginflux.
// What can change without a restart is the log level, and the sink's
// batch size, flush interval and pending-row limit; any other change is
// logged as needing a restart. Safe for concurrent use.
// limitSetter changes the limits of sinks a reloader does not hold itself.
type limitSetter interface {
	setLimits(batchSize int, flushInterval time.Duration, maxPendingRows int)
}

type reloader struct {
	args   []string            // the command line, which still wins
	getenv func(string) string // the process environment
	level  *slog.LevelVar
	sink   *sink.Sink
	others limitSetter // the sinks of other schemas (--schema-from-db), or nil
	log    *slog.Logger

	mu  sync.Mutex
	cfg config.Config // what runs now; guarded by mu
}

// reload reads the configuration again and applies it. On an error, from
// the file or from a setting, nothing changes and the error says why.
func (r *reloader) reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	next, err := parseConfig(r.args, r.getenv, io.Discard)
	if err != nil {
		return err
	}
	cur := r.cfg

	// The settings that take effect at once, logged old → new. The log
	// level goes first when it lowers, last when it rises, so that these
	// lines show at whichever of the two levels is more verbose.
	type change struct {
		name     string
		old, new any
	}
	var applied []change
	if next.LogLevel != cur.LogLevel {
		applied = append(applied, change{"log-level", cur.LogLevel, next.LogLevel})
		r.level.Set(min(cur.LogLevel, next.LogLevel))
	}
	if next.BatchSize != cur.BatchSize {
		applied = append(applied, change{"batch-size", cur.BatchSize, next.BatchSize})
	}
	if next.FlushInterval != cur.FlushInterval {
		applied = append(applied, change{"flush-interval", cur.FlushInterval, next.FlushInterval})
	}
	if next.MaxPendingRows != cur.MaxPendingRows {
		applied = append(applied, change{"max-pending-rows", cur.MaxPendingRows, next.MaxPendingRows})
	}
	r.sink.SetLimits(next.BatchSize, next.FlushInterval, next.MaxPendingRows)
	if r.others != nil {
		r.others.setLimits(next.BatchSize, next.FlushInterval, next.MaxPendingRows)
	}
	for _, c := range applied {
		r.log.Info("setting changed", "setting", c.name, "old", fmt.Sprint(c.old), "new", fmt.Sprint(c.new))
	}
	r.level.Set(next.LogLevel)
	cur.LogLevel, cur.BatchSize, cur.FlushInterval, cur.MaxPendingRows = next.LogLevel, next.BatchSize, next.FlushInterval, next.MaxPendingRows

	// The rest is kept as it runs, so that the next reload warns again.
	restart := needRestart(cur, next)
	if len(restart) > 0 {
		// Names only: values such as --database-url may hold secrets.
		r.log.Warn("changed settings need a restart to take effect; running on with their old values",
			"settings", strings.Join(restart, ", "))
	}
	r.cfg = cur
	r.log.Info("configuration reloaded", "applied", len(applied), "need_restart", len(restart))
	return nil
}

// needRestart returns the flag names of the settings that differ between
// a and b.
func needRestart(a, b config.Config) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var names []string
	seen := make(map[string]bool)
	for i := range va.NumField() {
		if sameSetting(va.Field(i).Interface(), vb.Field(i).Interface()) {
			continue
		}
		name := flagOfField(va.Type().Field(i).Name)
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	return names
}

// sameSetting reports whether two values of a config.Config field are
// the same setting. Templates parsed twice from one text are the same,
// though they are two values that reflect.DeepEqual tells apart.
func sameSetting(a, b any) bool {
	ta, okA := a.(*template.Template)
	tb, okB := b.(*template.Template)
	if okA && okB {
		return templateText(ta) == templateText(tb)
	}
	return reflect.DeepEqual(a, b)
}

func templateText(t *template.Template) string {
	if t == nil {
		return "<none>"
	}
	if t.Tree == nil || t.Tree.Root == nil {
		return ""
	}
	return t.Tree.Root.String()
}

// fieldFlags names the flag of the config.Config fields whose flag name
// is not their name in kebab case.
var fieldFlags = map[string]string{
	"Database":      "database-url", // a description of DatabaseURL
	"UintType":      "uint64-type",
	"PProf":         "pprof",
	"SpoolMaxBytes": "spool-max-size",
}

// flagOfField returns the flag that sets a config.Config field:
// UDPReadBuffer is udp-read-buffer, DatabaseURL database-url.
func flagOfField(field string) string {
	if f, ok := fieldFlags[field]; ok {
		return f
	}
	var b strings.Builder
	rs := []rune(field)
	for i, r := range rs {
		// A word starts at an upper-case letter after a lower-case one,
		// and at the last upper-case letter of a run when a lower-case
		// one follows (the R of UDPRead).
		if i > 0 && unicode.IsUpper(r) && (unicode.IsLower(rs[i-1]) || i+1 < len(rs) && unicode.IsLower(rs[i+1])) {
			b.WriteByte('-')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// catchSIGHUP starts catching SIGHUP, whose default is to end the
// process, on the channel it returns; stop it with signal.Stop. One that
// comes while pginflux starts waits there for watchReload.
func catchSIGHUP() chan os.Signal {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup
}

// watchReload reloads the configuration on every SIGHUP caught on hup
// until stop is called, logging what changed, or the error and that
// nothing did.
func watchReload(hup chan os.Signal, r *reloader) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-hup:
			case <-done:
				return
			}
			r.log.Info("SIGHUP: reloading the configuration", "config_file", r.getenv(configFileEnv))
			err := r.reload()
			if err != nil {
				r.log.Error("cannot reload the configuration; running on with the current one", "err", err)
			}
			if testHookReloaded != nil {
				testHookReloaded(err)
			}
		}
	})
	return func() {
		signal.Stop(hup)
		close(done)
		wg.Wait()
	}
}
