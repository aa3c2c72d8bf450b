package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/testkit"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// send is a lean request for benchmarks (no test helpers per call).
func send(c *http.Client, method, url, ip, key, body string) int {
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("X-Forwarded-For", ip)
	req.Header.Set("Authorization", "Bearer "+key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// BenchmarkVerifyDuringFailureFlood measures POST /v1/verify of a valid
// M2M token with a valid admin key from one address, alone and while
// another address floods keyward with bad keys (with the default budget it
// is throttled after 30; without a throttle every bad key is looked up).
//
//	go test -run '^$' -bench VerifyDuringFailureFlood -benchtime 3s ./internal/httpapi/
func BenchmarkVerifyDuringFailureFlood(b *testing.B) {
	for _, tc := range []struct {
		flood bool
		limit int // 0: throttle off
	}{{false, authority.DefaultAuthFailureLimit}, {true, authority.DefaultAuthFailureLimit}, {true, 0}} {
		flood := tc.flood
		b.Run(fmt.Sprintf("flood=%v/throttle=%v", flood, tc.limit > 0), func(b *testing.B) {
			e := apitest.StartWith(b, testkit.OpenSQLite(b), apitest.Options{TrustedProxies: loopback, AuthFailureLimit: tc.limit})
			create := e.Do(b, "POST", "/clerk/v1/machines", e.AdminKey, map[string]string{"name": "worker"})
			mint := e.Do(b, "POST", "/clerk/v1/m2m_tokens", create.JSON(b)["secret_key"].(string), map[string]any{})
			body := `{"token":"` + mint.JSON(b)["token"].(string) + `"}`
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

			stop := make(chan struct{})
			var wg sync.WaitGroup
			var floodN, throttled atomic.Int64
			if flood {
				for range 2 {
					wg.Go(func() {
						for {
							select {
							case <-stop:
								return
							default:
							}
							// A distinct guess each time, as a brute force sends: no cache helps.
							bad := credential.MustGenerate(credential.KindAdminKey).Reveal()
							if send(client, "GET", e.URL+"/v1/caller", "203.0.113.9", bad, "") == http.StatusTooManyRequests {
								throttled.Add(1)
							}
							floodN.Add(1)
						}
					})
				}
			}
			var failed atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if send(client, "POST", e.URL+"/v1/verify", "198.51.100.7", e.AdminKey, body) != http.StatusOK {
						failed.Add(1)
					}
				}
			})
			b.StopTimer()
			close(stop)
			wg.Wait()
			if failed.Load() > 0 {
				b.Fatalf("%d valid verifications failed", failed.Load())
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
			if flood {
				b.ReportMetric(float64(floodN.Load()), "flood_requests")
				b.ReportMetric(float64(throttled.Load()), "flood_429s")
			}
		})
	}
}

// BenchmarkAuditWriteAmplification sends 10 000 failed authentications
// and reports the audit events they wrote per request.
//
//	go test -run '^$' -bench AuditWriteAmplification -benchtime 1x ./internal/httpapi/
func BenchmarkAuditWriteAmplification(b *testing.B) {
	const requests = 10000
	for _, tc := range []struct {
		name      string
		limit     int // 0: throttle off
		addresses int
	}{
		{"one_address/throttle=default", authority.DefaultAuthFailureLimit, 1},
		{"one_address/throttle=off", 0, 1},
		{"100_addresses/throttle=default", authority.DefaultAuthFailureLimit, 100},
		{"10000_addresses/throttle=off", 0, 10000},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				e := apitest.StartWith(b, testkit.OpenSQLite(b), apitest.Options{TrustedProxies: loopback, AuthFailureLimit: tc.limit})
				before := countEvents(b, e)
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
				var wg sync.WaitGroup
				var next atomic.Int64
				for range 8 {
					wg.Go(func() {
						for i := next.Add(1); i <= requests; i = next.Add(1) {
							ip := fmt.Sprintf("10.0.%d.%d", (int(i)%tc.addresses)/250, (int(i)%tc.addresses)%250+1)
							send(client, "GET", e.URL+"/clerk/v1/machines", ip, credential.MustGenerate(credential.KindAdminKey).Reveal(), "")
						}
					})
				}
				wg.Wait()
				if err := e.Auth.FlushRefusals(context.Background(), true); err != nil {
					b.Fatal(err)
				}
				written := countEvents(b, e) - before
				b.ReportMetric(float64(written), "events")
				b.ReportMetric(float64(written)/requests, "events/req")
			}
		})
	}
}

func countEvents(b *testing.B, e *apitest.Env) int {
	b.Helper()
	n := 0
	err := e.Store.View(context.Background(), func(tx authority.Tx) error {
		for _, id := range []string{"", e.InstanceID} {
			_, total, err := tx.ListAuditEvents(context.Background(), authority.AuditFilter{InstanceID: id, Limit: 1})
			if err != nil {
				return err
			}
			n += total
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}
