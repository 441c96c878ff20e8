package parse_test

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pginflux/pginflux/parse"
)

func ExampleParser() {
	datagram := []byte(`# from telegraf
cpu,host=a usage_idle=95.5,usage_user=2i 1700000000
cpu,host=b usage_idle=NaN 1700000000
disk,host=a,path=/var\ log free=1024u,ok=true,label="fast \"ssd\""
`)
	now := time.Unix(1700000060, 0)

	p := parse.NewParser(parse.Second) // one per goroutine, reused for every buffer
	p.Reset(datagram, now)
	for {
		pt, err := p.Next()
		if err == io.EOF {
			break
		}
		var le *parse.LineError
		if errors.As(err, &le) {
			// A bad line: count it by le.Reason and go on.
			fmt.Printf("line %d rejected: %s\n", le.Line, le.Reason)
			continue
		}
		// pt is valid until the next call to Next: copy what you keep.
		fmt.Printf("line %d: %s at %d\n", pt.Line, pt.Measurement, pt.Time)
		for _, t := range pt.Tags {
			fmt.Printf("  tag %s=%s\n", t.Key, t.Value)
		}
		for i := range pt.Fields {
			f := &pt.Fields[i]
			switch f.Kind {
			case parse.Float:
				fmt.Printf("  %s %s=%v\n", f.Kind, f.Key, f.Float())
			case parse.Int:
				fmt.Printf("  %s %s=%v\n", f.Kind, f.Key, f.Int())
			case parse.Uint:
				fmt.Printf("  %s %s=%v\n", f.Kind, f.Key, f.Uint())
			case parse.Bool:
				fmt.Printf("  %s %s=%v\n", f.Kind, f.Key, f.Bool())
			case parse.String:
				fmt.Printf("  %s %s=%q\n", f.Kind, f.Key, f.Str)
			}
		}
	}
	// Output:
	// line 2: cpu at 1700000000000000000
	//   tag host=a
	//   float usage_idle=95.5
	//   integer usage_user=2
	// line 3 rejected: syntax
	// line 4: disk at 1700000060000000000
	//   tag host=a
	//   tag path=/var log
	//   unsigned free=1024
	//   boolean ok=true
	//   string label="fast \"ssd\""
}
