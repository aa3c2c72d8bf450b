package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// newClient returns the one client every request goes through: keep-alive
// connections, enough idle ones per host that no level redials in its loop.
func newClient(maxConcurrency int) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil, // loopback only; an HTTP_PROXY would measure the proxy
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: maxConcurrency,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// roundRobin hands out request bodies in turn, safe for concurrent use.
type roundRobin struct {
	items [][]byte
	next  atomic.Uint64
}

func (r *roundRobin) pick() []byte {
	return r.items[(r.next.Add(1)-1)%uint64(len(r.items))]
}

// verifyBodies encodes every token once, so the loop only copies bytes.
func verifyBodies(tokens []string) (*roundRobin, error) {
	r := &roundRobin{}
	for _, t := range tokens {
		b, err := json.Marshal(map[string]string{"token": t})
		if err != nil {
			return nil, err
		}
		r.items = append(r.items, b)
	}
	return r, nil
}

type loadSpec struct {
	url, authorization string
	bodies             *roundRobin
	concurrency        int
	warmup, duration   time.Duration
}

type loadResult struct {
	requests, errors int
	firstError       string
	elapsed          time.Duration   // from the end of the warm-up to the last measured answer
	latencies        []time.Duration // sorted
}

// worker is one closed-loop client; it owns its slice and buffer, so the
// loop shares nothing but the body picker.
type worker struct {
	latencies  []time.Duration
	errors     int
	firstError string
	lastDone   time.Time
	answer     bytes.Buffer
}

// runLoad runs spec.concurrency closed loops: warm-up first, then it measures
// every request started before the end of spec.duration.
func runLoad(ctx context.Context, client *http.Client, spec loadSpec) (loadResult, error) {
	measureFrom := time.Now().Add(spec.warmup)
	stopAt := measureFrom.Add(spec.duration)
	workers := make([]worker, spec.concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		w.latencies = make([]time.Duration, 0, 4096)
		wg.Go(func() {
			for ctx.Err() == nil {
				began := time.Now()
				if !began.Before(stopAt) {
					return
				}
				failure := verifyOnce(ctx, client, spec, spec.bodies.pick(), &w.answer)
				if began.Before(measureFrom) {
					continue
				}
				w.lastDone = time.Now()
				w.latencies = append(w.latencies, w.lastDone.Sub(began))
				if failure != "" {
					w.errors++
					if w.firstError == "" {
						w.firstError = failure
					}
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return loadResult{}, err
	}
	var res loadResult
	lastDone := stopAt
	for _, w := range workers {
		res.latencies = append(res.latencies, w.latencies...)
		res.errors += w.errors
		if res.firstError == "" {
			res.firstError = w.firstError
		}
		if w.lastDone.After(lastDone) {
			lastDone = w.lastDone
		}
	}
	slices.Sort(res.latencies)
	res.requests = len(res.latencies)
	res.elapsed = lastDone.Sub(measureFrom)
	return res, nil
}

// verifyOnce sends one verify request and returns why it failed, or "". It
// reads the whole body so the connection goes back to the pool.
func verifyOnce(ctx context.Context, client *http.Client, spec loadSpec, body []byte, answer *bytes.Buffer) (failure string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, spec.url, bytes.NewReader(body))
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Authorization", spec.authorization)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err.Error()
	}
	answer.Reset()
	_, err = answer.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err.Error()
	}
	var verdict struct {
		Valid bool `json:"valid"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(answer.Bytes(), &verdict) != nil || !verdict.Valid {
		return fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(answer.Bytes()))
	}
	return ""
}

func (r loadResult) stats() stats {
	s := stats{
		Requests:   r.requests,
		Errors:     r.errors,
		FirstError: r.firstError,
		P50Ms:      milliseconds(percentile(r.latencies, 50)),
		P99Ms:      milliseconds(percentile(r.latencies, 99)),
	}
	if r.elapsed > 0 {
		s.RequestsPerSecond = float64(r.requests) / r.elapsed.Seconds()
	}
	return s
}

func milliseconds(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentile is the nearest-rank percentile p (0 < p ≤ 100) of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// exceedsErrorBudget reports whether a run failed: more than 1 % errors, or
// nothing measured at all.
func exceedsErrorBudget(errors, requests int) bool {
	return requests == 0 || errors*100 > requests
}

// startBaseline serves the no-op verify on a free loopback port.
func startBaseline() (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: noopVerify(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// noopVerify does the HTTP part of a verify and nothing else: it reads the
// request and answers a valid verdict about the size of keyward's.
func noopVerify() http.Handler {
	const size = 200
	prefix, suffix := `{"valid":true,"code":"valid","padding":"`, `"}`
	answer := []byte(prefix + strings.Repeat("x", size-len(prefix)-len(suffix)) + suffix)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	})
}
