package ingest_test

import (
	"bytes"
	"testing"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/detect"
	"github.com/phalanx-defence/phalanx/ingest"
	"github.com/phalanx-defence/phalanx/loggen"
	"github.com/phalanx-defence/phalanx/parse"
	"github.com/phalanx-defence/phalanx/parse/logline"
	"github.com/phalanx-defence/phalanx/parse/sshd"
)

// benchReplay measures what `phalanx replay` does per line — split,
// recognise, parse, detect — over a generated day with a realistic mix of
// attackers and legitimate traffic, and reports lines per second.
func benchReplay(b *testing.B, kind loggen.Kind, typ parse.Type) {
	var buf bytes.Buffer
	truth, err := loggen.Generate(&buf, loggen.Config{Kind: kind, Seed: 1, Lines: 200_000})
	if err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		engine, err := detect.New(detect.Config{Scenarios: detect.DefaultScenarios(), BuiltinAllowlist: true})
		if err != nil {
			b.Fatal(err)
		}
		p := ingest.New(parse.New(parse.Options{Type: typ, SSHDMode: sshd.Aggressive, Context: &logline.Context{}}), engine, func(phalanx.Decision) {})
		if _, err := ingest.ScanLines(bytes.NewReader(data), func(l string) { p.Line(l) }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(truth.Lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

func BenchmarkReplaySSHD(b *testing.B)      { benchReplay(b, loggen.SSHD, parse.Auto) }
func BenchmarkReplayNginx(b *testing.B)     { benchReplay(b, loggen.Nginx, parse.Auto) }
func BenchmarkReplaySSHDHint(b *testing.B)  { benchReplay(b, loggen.SSHD, parse.SSHD) }
func BenchmarkReplayNginxHint(b *testing.B) { benchReplay(b, loggen.Nginx, parse.Nginx) }
