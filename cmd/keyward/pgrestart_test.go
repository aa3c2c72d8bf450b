package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/testkit"
)

// requestBound is the longest any request may take while the database is
// down or coming back: keyward must answer, not hang.
const requestBound = 10 * time.Second

// TestServeRecoversFromAPostgresRestart stops a private PostgreSQL cluster
// under a running keyward and starts it again: meanwhile keyward answers
// 503 (never 500, never a hang), and afterwards it serves again by itself,
// reads, writes, readiness and the invalidation bus included.
func TestServeRecoversFromAPostgresRestart(t *testing.T) {
	cluster := testkit.StartPostgresCluster(t)
	url, stderr := startServe(t, "--database-url", cluster.URL(), "--master-key", newMasterKey(t))
	adminKey := adminKeyLine.FindStringSubmatch(stderr.String())[1]
	client := &http.Client{Timeout: requestBound}

	_, machineKey := createMachine(t, url, adminKey)

	// Each of these reads or writes the store on every call: a list, two
	// creates, a verification of a token never seen (no cache can answer
	// it), a first use of an admin key, and the readiness check.
	probes := map[string]func() (int, error){
		"GET /clerk/v1/machines": func() (int, error) {
			return do(client, "GET", url+"/clerk/v1/machines", adminKey, "")
		},
		"POST /clerk/v1/machines": func() (int, error) {
			return do(client, "POST", url+"/clerk/v1/machines", adminKey, `{"name":"worker"}`)
		},
		"POST /clerk/v1/m2m_tokens": func() (int, error) {
			return do(client, "POST", url+"/clerk/v1/m2m_tokens", machineKey, `{}`)
		},
		"POST /v1/verify": func() (int, error) {
			token := credential.MustGenerate(credential.KindM2MToken).Reveal()
			return do(client, "POST", url+"/v1/verify", adminKey, `{"token":"`+token+`"}`)
		},
		"GET /v1/caller with an unused key": func() (int, error) {
			return do(client, "GET", url+"/v1/caller", credential.MustGenerate(credential.KindAdminKey).Reveal(), "")
		},
		"GET /readyz": func() (int, error) { return do(client, "GET", url+"/readyz", "", "") },
	}
	// What each probe answers while the store is up.
	up := map[string]int{"GET /v1/caller with an unused key": 401}
	// check polls every probe at once until each answers want (while up:
	// its success status), failing on a 500, on a request not answered
	// within requestBound, or after 30 s.
	check := func(phase string, want int) {
		t.Helper()
		var wg sync.WaitGroup
		failures := make(chan string, len(probes))
		for name, probe := range probes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				deadline := time.Now().Add(30 * time.Second)
				for {
					status, err := probe()
					switch {
					case err != nil:
						failures <- fmt.Sprintf("%s: %v (a request must be answered within %s)", name, err, requestBound)
						return
					case status == 500:
						failures <- name + " answered 500"
						return
					case want == 200 && (up[name] == 0 && status/100 == 2 || status == up[name]) || status == want:
						return
					case time.Now().After(deadline):
						failures <- fmt.Sprintf("%s still answers %d after 30 s, want %d", name, status, want)
						return
					}
					time.Sleep(100 * time.Millisecond) // polling interval, not an assertion
				}
			}()
		}
		wg.Wait()
		close(failures)
		for f := range failures {
			t.Errorf("%s: %s", phase, f)
		}
		if t.Failed() {
			t.Fatalf("keyward's log ends:\n%s", tail(stderr.String(), 30))
		}
	}
	check("before the restart", 200)
	waitForLog(t, stderr, "invalidation bus connected", 1)

	cluster.Stop()
	check("with PostgreSQL down", 503)

	cluster.Start()
	check("once PostgreSQL is back", 200)
	// The LISTEN connection was lost with the server: the bus subscribes
	// again by itself.
	waitForLog(t, stderr, "invalidation bus connected", 2)

	// A server that stops answering without closing its connections (a
	// partition, a hung host) must not hang requests either.
	cluster.Freeze()
	check("with PostgreSQL hung", 503)
	cluster.Thaw()
	check("once PostgreSQL answers again", 200)
}

func do(client *http.Client, method, url, key, body string) (int, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// waitForLog waits up to 30 s for msg to have been logged n times.
func waitForLog(t *testing.T, log *syncBuffer, msg string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(log.String(), msg) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q logged %d times after 30 s, want %d\n%s", msg, strings.Count(log.String(), msg), n, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tail returns the last n lines of log.
func tail(log string, n int) string {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
