package main

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/phalanx-defence/phalanx/config"
	"github.com/phalanx-defence/phalanx/detect"
	"github.com/phalanx-defence/phalanx/parse"
	"github.com/phalanx-defence/phalanx/parse/logline"
	"github.com/phalanx-defence/phalanx/parse/rules"
	"github.com/phalanx-defence/phalanx/parse/sshd"
)

// openInput opens a log file for reading: "-" is standard input and a
// ".gz" file (a rotated log) is decompressed on the fly.
func openInput(path string, stdin io.Reader) (io.ReadCloser, error) {
	return openInputCounted(path, stdin, nil)
}

// openInputCounted is openInput with the file's bytes, as stored (before
// decompression), seen by count when it is not nil: the progress line
// compares them with the size on disk.
func openInputCounted(path string, stdin io.Reader, count func(io.Reader) io.Reader) (io.ReadCloser, error) {
	if path == "-" {
		return io.NopCloser(stdin), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	var r io.Reader = f
	if count != nil {
		r = count(f)
	}
	if strings.HasSuffix(path, ".gz") {
		z, err := gzip.NewReader(r)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: not a gzip file: %w", path, err)
		}
		r = z
	}
	return struct {
		io.Reader
		io.Closer
	}{r, f}, nil
}

// parserFlags are the flags that choose how lines are parsed.
type parserFlags struct {
	typ      string
	sshdMode string
	rules    string
}

func (f *parserFlags) register(flags interface {
	StringVar(p *string, name, value, usage string)
	StringVarP(p *string, name, shorthand, value, usage string)
}) {
	flags.StringVarP(&f.typ, "type", "t", "auto", "log format hint: auto, sshd, nginx, apache, postfix, dovecot or syslog")
	flags.StringVar(&f.sshdMode, "sshd-mode", "aggressive", "which sshd failures count, as fail2ban's modes: normal, ddos, extra or aggressive")
	flags.StringVar(&f.rules, "rules", "", "YAML file with custom `rules:` (and `scenarios:`) to use besides the built-in ones")
}

// build returns the parser and the file's rules and scenarios.
func (f *parserFlags) build() (*parse.Parser, *rules.Set, []detect.Scenario, error) {
	typ, err := parse.ParseType(f.typ)
	if err != nil {
		return nil, nil, nil, err
	}
	mode, err := sshd.ParseMode(f.sshdMode)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--sshd-mode: %w", err)
	}
	var set *rules.Set
	var scen []detect.Scenario
	if f.rules != "" {
		if set, scen, err = config.LoadRulesFile(f.rules); err != nil {
			return nil, nil, nil, err
		}
	}
	p := parse.New(parse.Options{Type: typ, SSHDMode: mode, Rules: set, Context: &logline.Context{}})
	return p, set, scen, nil
}
