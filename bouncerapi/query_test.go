package bouncerapi

import (
	"testing"

	"github.com/phalanx-defence/phalanx"
)

// TestCrowdsecOrigin: bouncers that filter by origin see CrowdSec's names,
// imported decisions included.
func TestCrowdsecOrigin(t *testing.T) {
	for o, want := range map[phalanx.Origin]string{
		phalanx.OriginLocal:    "crowdsec",
		phalanx.OriginManual:   "cscli",
		phalanx.OriginAlliance: "CAPI",
		"import:crowdsec":      "cscli-import",
		"import:fail2ban":      "cscli-import",
	} {
		if got := crowdsecOrigin(o); got != want {
			t.Errorf("origin %q reaches bouncers as %q, want %q", o, got, want)
		}
	}
}
