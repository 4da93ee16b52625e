// Command loadgen is an open-loop HTTP load generator for Rebond's benchmarks.
//
// Requests are scheduled at a constant arrival rate, or at the send times read from -schedule
// (nanoseconds from the start, one per line), whatever the server does; each latency is
// measured from the request's *scheduled* send time, so queueing (coordinated omission) is not
// hidden. It writes one CSV line per request: scheduled_unix_ns, latency_us, status, reference,
// lag_us (how late the request left after its scheduled time). With -idempotency-keys every
// request carries its own Idempotency-Key, as the portal's do.
//
//	loadgen -url http://127.0.0.1:8000/v1/submissions -rate 500 -duration 30s \
//	        -bodies bodies.json -out results.csv
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

type result struct {
	scheduled time.Time
	latency   time.Duration
	lag       time.Duration
	status    int
	reference string
}

func main() {
	url := flag.String("url", "http://127.0.0.1:8000/v1/submissions", "target URL (POST)")
	rate := flag.Float64("rate", 100, "requests per second")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	bodiesPath := flag.String("bodies", "", "JSON array of request bodies, used in turn")
	out := flag.String("out", "-", "CSV output file (- for stdout)")
	maxInFlight := flag.Int("max-in-flight", 20000, "requests allowed in flight at once")
	timeout := flag.Duration("timeout", 10*time.Second, "per-request timeout")
	keyed := flag.Bool("idempotency-keys", false, "send a fresh Idempotency-Key with each request")
	schedulePath := flag.String("schedule", "", "send times in ns from the start, one per line (instead of -rate)")
	flag.Parse()
	run := time.Now().UnixNano()

	var raw []json.RawMessage
	data, err := os.ReadFile(*bodiesPath)
	if err != nil {
		fail("reading bodies: %v", err)
	}
	if err := json.Unmarshal(data, &raw); err != nil || len(raw) == 0 {
		fail("bodies must be a non-empty JSON array: %v", err)
	}

	transport := &http.Transport{
		MaxIdleConns:        *maxInFlight,
		MaxIdleConnsPerHost: *maxInFlight,
		IdleConnTimeout:     30 * time.Second,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	}
	client := &http.Client{Transport: transport, Timeout: *timeout}

	var offsets []time.Duration
	if *schedulePath != "" {
		offsets = readSchedule(*schedulePath)
	} else {
		interval := time.Duration(float64(time.Second) / *rate)
		for i := 0; i < int(*rate*duration.Seconds()); i++ {
			offsets = append(offsets, time.Duration(i)*interval)
		}
	}
	total := len(offsets)
	results := make([]result, total)
	slots := make(chan struct{}, *maxInFlight)
	var wg sync.WaitGroup
	start := time.Now().Add(50 * time.Millisecond)

	for i := 0; i < total; i++ {
		scheduled := start.Add(offsets[i])
		if wait := time.Until(scheduled); wait > 0 {
			time.Sleep(wait)
		}
		slots <- struct{}{}
		wg.Add(1)
		go func(i int, scheduled time.Time) {
			defer wg.Done()
			defer func() { <-slots }()
			key := ""
			if *keyed {
				key = fmt.Sprintf("bench-%x-%d", run, i)
			}
			results[i] = send(client, *url, raw[i%len(raw)], key, scheduled)
		}(i, scheduled)
	}
	wg.Wait()

	w := os.Stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			fail("creating %s: %v", *out, err)
		}
		defer f.Close()
		w = f
	}
	buf := bufio.NewWriter(w)
	defer buf.Flush()
	fmt.Fprintln(buf, "scheduled_unix_ns,latency_us,status,reference,lag_us")
	for _, r := range results {
		fmt.Fprintf(buf, "%d,%d,%d,%s,%d\n", r.scheduled.UnixNano(), r.latency.Microseconds(), r.status, r.reference, r.lag.Microseconds())
	}
}

func send(client *http.Client, url string, body []byte, key string, scheduled time.Time) result {
	r := result{scheduled: scheduled, lag: time.Since(scheduled)}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		r.latency = time.Since(scheduled)
		return r
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := client.Do(req)
	if err != nil {
		r.latency = time.Since(scheduled)
		return r
	}
	payload, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.latency = time.Since(scheduled)
	r.status = resp.StatusCode
	var accepted struct {
		Reference string `json:"reference"`
	}
	_ = json.Unmarshal(payload, &accepted)
	r.reference = accepted.Reference
	return r
}

// readSchedule reads send times, in nanoseconds from the start, one per line.
func readSchedule(path string) []time.Duration {
	f, err := os.Open(path)
	if err != nil {
		fail("reading schedule: %v", err)
	}
	defer f.Close()
	var offsets []time.Duration
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		ns, err := strconv.ParseInt(strings.TrimSpace(scanner.Text()), 10, 64)
		if err != nil {
			fail("schedule line %q: %v", scanner.Text(), err)
		}
		offsets = append(offsets, time.Duration(ns))
	}
	return offsets
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", args...)
	os.Exit(2)
}
