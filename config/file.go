package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
)

// FileEnv names the environment variable that points at a file of
// settings in the PGINFLUX_* form (KEY=VALUE lines, as a systemd
// EnvironmentFile). Load reads it over the environment, at start and again
// on every SIGHUP, which is how a running pginflux learns new settings:
// the environment of a running process never changes.
const FileEnv = "PGINFLUX_CONFIG_FILE"

// maxFile bounds what is read of the file; a settings file is a few
// hundred bytes.
const maxFile = 1 << 20

// Load is Parse with the settings of the file named by PGINFLUX_CONFIG_FILE,
// when set, over the environment. Flags on the command line still win.
func Load(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	merged, err := withFile(getenv)
	if err != nil {
		return Config{}, err
	}
	return Parse(args, merged, out)
}

// withFile returns getenv with the settings of the file named by
// PGINFLUX_CONFIG_FILE over it, or getenv itself when the variable is not
// set. A variable set in the file, even to "", hides the environment's.
func withFile(getenv func(string) string) (func(string) string, error) {
	path := getenv(FileEnv)
	if path == "" {
		return getenv, nil
	}
	vars, err := ReadFile(path)
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

// ReadFile reads KEY=VALUE lines as systemd reads an EnvironmentFile:
// blank lines and lines starting with # or ; are skipped, an optional
// "export " is dropped, white space around the key and the value is
// trimmed, and a value wholly in single or double quotes loses them. The
// error names the file and the line, never a value, which may be a
// password.
func ReadFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", FileEnv, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", FileEnv, path, err)
	}
	if len(data) > maxFile {
		return nil, fmt.Errorf("%s: %s is larger than %d bytes", FileEnv, path, maxFile)
	}
	vars := make(map[string]string)
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxFile+1)
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
		return nil, fmt.Errorf("%s: %w", FileEnv, err)
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
