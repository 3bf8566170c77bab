// Command loggen writes a deterministic day of realistic sshd or nginx
// traffic and its ground truth, for benchmarks and accuracy tests.
//
//	go run ./bench/loggen -kind sshd -lines 1000000 -seed 1 -out auth.log -truth auth.truth.json
//	go run ./bench/loggen -day DIR   # both kinds: DIR/auth.log, DIR/access.log and their truths
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/phalanx-defence/phalanx/loggen"
)

func main() {
	kind := flag.String("kind", "sshd", "kind of log: sshd or nginx")
	lines := flag.Int("lines", loggen.DefaultLines, "about how many lines to write")
	seed := flag.Uint64("seed", 1, "seed: the same seed gives the same bytes")
	out := flag.String("out", "-", "log file to write (- for standard output)")
	truth := flag.String("truth", "", "file to write the ground truth to, as JSON (optional)")
	start := flag.String("start", "", "first instant of the log, RFC 3339 (default "+loggen.DefaultStart.Format(time.RFC3339)+")")
	day := flag.String("day", "", "write both kinds into this directory: auth.log, access.log, auth.truth.json, access.truth.json")
	flag.Parse()

	cfg := loggen.Config{Kind: loggen.Kind(*kind), Lines: *lines, Seed: *seed}
	if *start != "" {
		t, err := time.Parse(time.RFC3339, *start)
		if err != nil {
			fail(fmt.Errorf("-start: %w", err))
		}
		cfg.Start = t
	}
	if *day != "" {
		if err := os.MkdirAll(*day, 0o755); err != nil {
			fail(err)
		}
		for _, k := range []struct {
			kind       loggen.Kind
			log, truth string
		}{{loggen.SSHD, "auth.log", "auth.truth.json"}, {loggen.Nginx, "access.log", "access.truth.json"}} {
			cfg.Kind = k.kind
			if err := write(cfg, filepath.Join(*day, k.log), filepath.Join(*day, k.truth)); err != nil {
				fail(err)
			}
		}
		return
	}
	if err := write(cfg, *out, *truth); err != nil {
		fail(err)
	}
}

func write(cfg loggen.Config, out, truthPath string) error {
	var w io.Writer = os.Stdout
	if out != "-" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		w = f
	}
	t, err := loggen.Generate(w, cfg)
	if f, ok := w.(*os.File); ok && f != os.Stdout {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return err
	}
	if truthPath == "" {
		return nil
	}
	f, err := os.Create(truthPath)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	if err := t.WriteJSON(bw); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "loggen:", err)
	os.Exit(1)
}
