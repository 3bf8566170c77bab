package journald

import (
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/source"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Entry
	}{
		{
			name: "sshd",
			in:   `{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1764259200000001","_PID":"812","_HOSTNAME":"web1","SYSLOG_IDENTIFIER":"sshd","_COMM":"sshd","MESSAGE":"Failed password for root from 203.0.113.5 port 22 ssh2"}`,
			want: Entry{Message: "Failed password for root from 203.0.113.5 port 22 ssh2", Identifier: "sshd", Comm: "sshd", PID: 812, Hostname: "web1",
				Time: time.UnixMicro(1764259200000001).UTC(), Cursor: "s=1;i=2"},
		},
		{
			name: "non-UTF-8 message as bytes",
			in:   `{"MESSAGE":[104,105,255,0],"_COMM":"app"}`,
			want: Entry{Message: "hi\xff\x00", Comm: "app"},
		},
		{
			name: "repeated field takes the first",
			in:   `{"MESSAGE":["first","second"],"SYSLOG_IDENTIFIER":[[104,105],"x"]}`,
			want: Entry{Message: "first", Identifier: "hi"},
		},
		{
			name: "null and bad numbers",
			in:   `{"MESSAGE":null,"_PID":"abc","__REALTIME_TIMESTAMP":"-5"}`,
			want: Entry{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, in := range []string{``, `null`, `[]`, `{"MESSAGE":5}`, `{"MESSAGE":[300]}`, `{"MESSAGE":{}}`, `{"MESSAGE":"x"`} {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%q) succeeded", in)
		}
	}
}

func TestDecodeLongMessage(t *testing.T) {
	msg := strings.Repeat("m", source.MaxLine+1)
	e, err := Decode([]byte(`{"MESSAGE":"` + msg + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Message) != source.MaxLine || !e.Truncated {
		t.Errorf("len %d, truncated %v", len(e.Message), e.Truncated)
	}
}

func TestProgram(t *testing.T) {
	if p := (Entry{Comm: "python3"}).Program(); p != "python3" {
		t.Errorf("Program() = %q", p)
	}
	if p := (Entry{Comm: "python3", Identifier: "myapp"}).Program(); p != "myapp" {
		t.Errorf("Program() = %q", p)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"1","_PID":"1","MESSAGE":"x"}`))
	f.Add([]byte(`{"MESSAGE":[104,105],"SYSLOG_IDENTIFIER":["a",[1]]}`))
	f.Add([]byte(`{"MESSAGE":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		if len(e.Message) > source.MaxLine || e.PID < 0 {
			t.Fatalf("bad entry %+v", e)
		}
	})
}
