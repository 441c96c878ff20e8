package config

import (
	"flag"
	"io"

	"github.com/pginflux/pginflux/internal/cli"
)

// FlagInfo describes one of pginflux's flags, for documentation and for
// tools that check configuration written elsewhere (a compose file, a
// systemd unit) against the real flag set.
type FlagInfo struct {
	Name        string // without dashes: "udp-read-buffer"
	Env         string // its environment twin: "PGINFLUX_UDP_READ_BUFFER"; "" for --version, which has none
	Default     string // as it would be given on the command line; "" for none
	Placeholder string // what the value is ("bytes"); "" for a boolean flag
	Usage       string // the help text, with the placeholder's quotes removed
	IsBool      bool   // takes no value on the command line
}

// Flags returns every flag Parse knows, in the order --help lists them.
// Defaults that depend on the machine (GOMAXPROCS) are this machine's.
func Flags() []FlagInfo {
	opts := options()
	out := make([]FlagInfo, 0, len(opts))
	for _, o := range opts {
		placeholder, usage := flag.UnquoteUsage(&flag.Flag{Usage: o.usage, Value: &rawValue{isBool: o.isBool}})
		env := EnvName(o.name)
		if o.noEnv {
			env = ""
		}
		out = append(out, FlagInfo{
			Name:        o.name,
			Env:         env,
			Default:     o.def,
			Placeholder: placeholder,
			Usage:       usage,
			IsBool:      o.isBool,
		})
	}
	return out
}

// Lookup returns the flag named name (without dashes), and whether there
// is one.
func Lookup(name string) (FlagInfo, bool) {
	for _, f := range Flags() {
		if f.Name == name {
			return f, true
		}
	}
	return FlagInfo{}, false
}

// writeFlags lists the flags of fs, made from opts, in the order of opts
// (docs/configuration.md's), each with its environment twin.
func writeFlags(w io.Writer, fs *flag.FlagSet, opts []option) {
	for _, o := range opts {
		env := EnvName(o.name)
		if o.noEnv {
			env = ""
		}
		cli.PrintFlag(w, fs.Lookup(o.name), env)
	}
}
