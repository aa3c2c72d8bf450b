package httpapi_test

import (
	"strings"
	"testing"

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
