// Package scanning holds keyward's secret-scanning rules (gitleaks.toml)
// and, in its own module so the main module does not carry gitleaks'
// dependencies, the test that runs them through gitleaks.
package scanning

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/spf13/viper"
	"github.com/zricethezav/gitleaks/v8/config"
	"github.com/zricethezav/gitleaks/v8/detect"
	"github.com/zricethezav/gitleaks/v8/logging"

	"github.com/keyward/keyward/internal/credential"
)

func loadDetector(t *testing.T) (*detect.Detector, config.Config) {
	t.Helper()
	// gitleaks logs findings (at trace level); this test logs no secret.
	logging.Logger = zerolog.Nop()
	raw, err := os.ReadFile("gitleaks.toml")
	if err != nil {
		t.Fatal(err)
	}
	v := viper.New()
	v.SetConfigType("toml")
	if err := v.ReadConfig(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	var vc config.ViperConfig
	if err := v.Unmarshal(&vc); err != nil {
		t.Fatal(err)
	}
	cfg, err := vc.Translate()
	if err != nil {
		t.Fatal(err)
	}
	return detect.NewDetector(cfg), cfg
}

// Every prefix keyward issues has exactly one rule, whose expression is
// credential.ScanPattern's and whose keyword is the prefix.
func TestOneRulePerPrefix(t *testing.T) {
	_, cfg := loadDetector(t)
	prefixes := credential.ScanPrefixes()
	if len(cfg.Rules) != len(prefixes) {
		t.Errorf("gitleaks.toml has %d rules, keyward issues %d prefixes", len(cfg.Rules), len(prefixes))
	}
	for _, p := range prefixes {
		var ids []string
		for id, r := range cfg.Rules {
			if r.Regex != nil && r.Regex.String() == credential.ScanPattern(p) {
				ids = append(ids, id)
				if !slices.Equal(r.Keywords, []string{p}) {
					t.Errorf("rule %s: keywords %q, want [%q]", id, r.Keywords, p)
				}
			}
		}
		if len(ids) != 1 {
			t.Errorf("prefix %s: %d rules with the expression %s, want 1", p, len(ids), credential.ScanPattern(p))
		}
	}
}

// wrongChecksum changes s's last checksum character: the same shape, a
// checksum that no longer matches.
func wrongChecksum(s string) string {
	last := s[len(s)-1]
	repl := byte('0')
	if last == '0' {
		repl = '1'
	}
	return s[:len(s)-1] + string(repl)
}

// mask shows a candidate as its prefix and four body characters, as keyward
// shows display prefixes: never a whole secret in a test log.
func mask(s string) string {
	for _, p := range credential.ScanPrefixes() {
		if strings.HasPrefix(s, p) && len(s) > len(p)+4 {
			return s[:len(p)+4]
		}
	}
	return "?"
}

// gitleaks finds every candidate of keyward's shape, real or not; filtered
// by credential.Parse (the checksum), exactly the real ones remain, and
// credential.FindSecrets finds exactly those, with their kinds.
func TestGitleaksFindsExactlyTheRealSecrets(t *testing.T) {
	det, _ := loadDetector(t)
	kinds := []credential.Kind{credential.KindAdminKey, credential.KindMachineKey, credential.KindAPIKey,
		credential.KindM2MToken, credential.KindOrgToken, credential.KindPAT, credential.KindActorTicket}
	var (
		fixture strings.Builder
		real    = map[string]credential.Kind{}
		fake    = map[string]bool{}
	)
	fixture.WriteString("# a fixture of keyward secrets, real and with wrong checksums\n")
	for i, k := range kinds {
		for j := range 2 {
			s := credential.MustGenerate(k).Reveal()
			real[s] = k
			bad := wrongChecksum(credential.MustGenerate(k).Reveal())
			if _, _, err := credential.Parse(bad); err == nil {
				t.Fatalf("%s: the altered secret still parses", k)
			}
			fake[bad] = true
			// The contexts secrets are committed in: env files, JSON, YAML,
			// shell, URLs.
			switch (i + j) % 4 {
			case 0:
				fmt.Fprintf(&fixture, "KEYWARD_KEY_%d_%d=%s\nOTHER=%s\n", i, j, s, bad)
			case 1:
				fmt.Fprintf(&fixture, "{\"token\": \"%s\", \"old\": \"%s\"}\n", s, bad)
			case 2:
				fmt.Fprintf(&fixture, "auth:\n  key: %s\n  backup: '%s'\n", s, bad)
			default:
				fmt.Fprintf(&fixture, "curl -H 'Authorization: Bearer %s' https://x.example/?k=%s\n", s, bad)
			}
		}
	}
	// Near misses of the right prefix, which no rule should take: too
	// short, too long, glued to a word.
	some := credential.MustGenerate(credential.KindM2MToken).Reveal()
	fmt.Fprintf(&fixture, "short=%s\nlong=%sX\nglued=x%s\n", some[:len(some)-1], some, some)

	text := fixture.String()
	findings := det.DetectString(text)
	seen := map[string]bool{}
	for _, f := range findings {
		seen[f.Secret] = true
	}
	for s := range real {
		if !seen[s] {
			t.Errorf("gitleaks missed a real %s (%s…)", real[s], mask(s))
		}
	}
	for s := range fake {
		if !seen[s] {
			t.Errorf("gitleaks missed a wrong-checksum candidate %s…", mask(s))
		}
	}
	if want := len(real) + len(fake); len(seen) != want {
		t.Errorf("gitleaks found %d distinct candidates, want %d (real and fake, no near miss)", len(seen), want)
	}
	// The checksum filter: exactly the real ones remain.
	kept := map[string]credential.Kind{}
	for s := range seen {
		if _, k, err := credential.Parse(s); err == nil {
			kept[s] = k
		}
	}
	if len(kept) != len(real) {
		t.Errorf("after the checksum filter %d remain, want the %d real ones", len(kept), len(real))
	}
	for s, k := range real {
		if kept[s] != k {
			t.Errorf("a real %s was kept as %q", k, kept[s])
		}
	}
	// FindSecrets, the helper keyward scan and the leak report use, agrees.
	got := map[string]credential.Kind{}
	for _, f := range credential.FindSecrets(text) {
		got[f.Secret.Reveal()] = f.Kind
		if line := strings.Split(text, "\n")[f.Line-1]; !strings.Contains(line, f.Secret.Reveal()) {
			t.Errorf("FindSecrets put a %s on line %d, which does not hold it", f.Kind, f.Line)
		}
	}
	if len(got) != len(real) {
		t.Errorf("FindSecrets found %d, want %d", len(got), len(real))
	}
	for s, k := range real {
		if got[s] != k {
			t.Errorf("FindSecrets: a real %s found as %q", k, got[s])
		}
	}
	t.Logf("%d kinds; %d candidates found by gitleaks, %d real after the checksum filter", len(kinds), len(seen), len(kept))
}
