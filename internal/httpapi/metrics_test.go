package httpapi_test

import (
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/metrics"
	"github.com/keyward/keyward/internal/testkit"
)

func TestMetricsParseAndMoveWithVerifications(t *testing.T) {
	e := apitest.StartWith(t, testkit.OpenSQLite(t), apitest.Options{Metrics: metrics.New()})
	scrape := func() map[string]float64 {
		t.Helper()
		resp := e.Do(t, "GET", "/metrics", "", nil)
		if resp.Status != 200 {
			t.Fatalf("/metrics: %d", resp.Status)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(strings.NewReader(string(resp.Body)))
		if err != nil {
			t.Fatalf("/metrics does not parse: %v", err)
		}
		out := map[string]float64{}
		for name, f := range families {
			for _, m := range f.GetMetric() {
				key := name
				for _, l := range m.GetLabel() {
					key += "," + l.GetName() + "=" + l.GetValue()
				}
				switch {
				case m.Counter != nil:
					out[key] = m.GetCounter().GetValue()
				case m.Histogram != nil:
					out[key] = float64(m.GetHistogram().GetSampleCount())
				case m.Gauge != nil:
					out[key] = m.GetGauge().GetValue()
				}
				for _, l := range m.GetLabel() {
					if strings.Contains(l.GetValue(), "sk_live_") || strings.Contains(l.GetValue(), "mt_") && len(l.GetValue()) > 40 {
						t.Fatalf("a label holds a secret-like value: %s", key)
					}
				}
			}
		}
		return out
	}
	before := scrape()
	unknown := credential.MustGenerate(credential.KindM2MToken).Reveal()
	for range 3 {
		e.Do(t, "POST", "/v1/verify", e.AdminKey, map[string]string{"token": unknown})
	}
	after := scrape()
	if got := after["keyward_verify_total,code=not_found,kind=m2m_token"] + after["keyward_verify_total,code=not_found,kind=unknown"] -
		before["keyward_verify_total,code=not_found,kind=m2m_token"] - before["keyward_verify_total,code=not_found,kind=unknown"]; got != 3 {
		t.Fatalf("3 verifications moved keyward_verify_total by %v:\n%v", got, after)
	}
	if after["keyward_http_requests_total,method=POST,route=POST /v1/verify,status=200"] < 3 {
		t.Fatalf("HTTP requests by route not counted: %v", after)
	}
	if after["keyward_cache_lookups_total,result=miss"]+after["keyward_cache_lookups_total,result=hit"] <= before["keyward_cache_lookups_total,result=miss"]+before["keyward_cache_lookups_total,result=hit"] {
		t.Fatal("cache lookups not counted")
	}
	if after["keyward_store_transaction_duration_seconds,mode=view,outcome=ok"] <= before["keyward_store_transaction_duration_seconds,mode=view,outcome=ok"] {
		t.Fatal("store transactions not counted")
	}
}

// documentedMetrics are the keyward_* names the README's "Operating it"
// section and the metrics package's documentation list.
func documentedMetrics(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	start := strings.Index(section, "\n## Operating it")
	if start < 0 {
		t.Fatal(`README has no "## Operating it" section`)
	}
	section = section[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	doc, err := os.ReadFile("../metrics/doc.go")
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`keyward_[a-z_]+[a-z]`)
	seen := map[string]bool{}
	var names []string
	for _, n := range append(name.FindAllString(section, -1), name.FindAllString(string(doc), -1)...) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	if len(names) < 10 {
		t.Fatalf("found only %v documented", names)
	}
	return names
}

// TestEveryDocumentedMetricExistsOnAFreshServer scrapes a server that has
// served nothing yet: every documented family is there, at zero, so a
// rate over it counts its first event.
func TestEveryDocumentedMetricExistsOnAFreshServer(t *testing.T) {
	e := apitest.StartWith(t, testkit.OpenSQLite(t), apitest.Options{Metrics: metrics.New()})
	resp := e.Do(t, "GET", "/metrics", "", nil)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(resp.Body)))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	for _, name := range documentedMetrics(t) {
		f, ok := families[name]
		if !ok || len(f.GetMetric()) == 0 {
			t.Errorf("%s is documented but not exposed before its first event", name)
		}
	}
	for _, want := range []string{
		"keyward_verify_total,code=valid,kind=m2m_token", "keyward_verify_total,code=revoked,kind=pat",
		"keyward_auth_failures_total,outcome=throttled", "keyward_ratelimit_refusals_total,kind=org_token",
		"keyward_fallback_total,component=bus", "keyward_http_requests_total,method=POST,route=POST /v1/verify,status=200",
	} {
		name, labels, _ := strings.Cut(want, ",")
		if v, ok := seriesValue(families[name], labels); !ok || v != 0 {
			t.Errorf("%s: want a series at 0, got %v (present %v)", want, v, ok)
		}
	}
	info := families["keyward_build_info"]
	if info == nil || len(info.GetMetric()) != 1 || info.GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Fatalf("keyward_build_info: %v", info)
	}
	labels := map[string]string{}
	for _, l := range info.GetMetric()[0].GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["go_version"] != runtime.Version() || labels["version"] == "" || labels["revision"] == "" {
		t.Errorf("keyward_build_info labels: %v", labels)
	}
}

// seriesValue finds the series of f whose labels, sorted by name and
// joined as "a=1,b=2", are labels.
func seriesValue(f *dto.MetricFamily, labels string) (float64, bool) {
	for _, m := range f.GetMetric() {
		var got []string
		for _, l := range m.GetLabel() {
			got = append(got, l.GetName()+"="+l.GetValue())
		}
		if strings.Join(got, ",") == labels {
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}
