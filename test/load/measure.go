package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/analysis/stats"
	"sluice.dev/sluice/pkg/shift"
	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/sluice"
)

// sample is what the command reads of the shifter, the API server and
// Prometheus at one moment.
type sample struct {
	at          time.Time
	cpu         time.Duration            // user and system time of the shifter so far
	cpuBy       map[string]time.Duration // of each process, by name
	peakRSS     int64                    // bytes
	auditOffset int64                    // bytes of the audit log read
	requests    map[string]int
	queries     float64 // instant queries Prometheus has answered
	// latencies are the shifter's histograms of where a step's time goes,
	// cumulative, by name (see latencyHistograms).
	latencies map[string][]stats.Bucket
}

// sample reads the counters once the audit log is quiet, so that the
// requests of what came before (the setup, the end of the last rollout)
// are all on one side of it. The shifter's requests are those in the log
// after auditFrom.
func (b *bench) sample(auditFrom int64) (sample, error) {
	s := sample{}
	var err error
	if err := b.waitAuditQuiet(auditFrom); err != nil {
		return s, err
	}
	s.at = time.Now()
	if s.requests, s.auditOffset, err = countRequests(b.env.AuditLog(), auditFrom); err != nil {
		return s, err
	}
	if s.cpu, s.peakRSS, err = processUsage(b.shifter.Pid()); err != nil {
		return s, err
	}
	s.cpuBy = map[string]time.Duration{"shifter": s.cpu}
	pids := map[string]int{"webhook": b.webhook.Pid(), "this command (load, telemetry)": os.Getpid()}
	for _, p := range b.env.Processes() {
		pids[p.Name()] = p.Pid()
	}
	for name, pid := range pids {
		if s.cpuBy[name], _, err = processUsage(pid); err != nil {
			return s, err
		}
	}
	if s.queries, err = prometheusQueries(b.env.PrometheusURL); err != nil {
		return s, err
	}
	if s.latencies, err = shifterLatencies(fmt.Sprintf("http://127.0.0.1:%d/metrics", b.shifter.MetricsPort)); err != nil {
		return s, err
	}
	return s, nil
}

// latencyHistograms are the shifter's histograms that split a step's lag:
// the time a due canary waits for one of the shifter's workers, the time a
// worker takes to reconcile it (most of it waiting for the analysis and
// the API server), and the time Prometheus takes to answer one query.
var latencyHistograms = []struct{ name, metric, label, value string }{
	{"waiting for a worker", "workqueue_queue_duration_seconds", "name", "canary"},
	{"reconciling", "controller_runtime_reconcile_time_seconds", "controller", "canary"},
	{"one Prometheus query", "sluice_prometheus_query_duration_seconds", "", ""},
}

// shifterLatencies reads latencyHistograms from the shifter's metrics.
func shifterLatencies(url string) (map[string][]stats.Bucket, error) {
	families, err := sluice.Scrape(url)
	if err != nil {
		return nil, fmt.Errorf("scrape the shifter's metrics: %w", err)
	}
	out := map[string][]stats.Bucket{}
	for _, h := range latencyHistograms {
		for _, m := range families[h.metric].GetMetric() {
			if h.label != "" && !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
				return l.GetName() == h.label && l.GetValue() == h.value
			}) {
				continue
			}
			buckets := []stats.Bucket{{UpperBound: math.Inf(1), Count: float64(m.GetHistogram().GetSampleCount())}}
			for _, b := range m.GetHistogram().GetBucket() {
				buckets = append(buckets, stats.Bucket{UpperBound: b.GetUpperBound(), Count: float64(b.GetCumulativeCount())})
			}
			out[h.name] = buckets
		}
	}
	return out, nil
}

// since is the histogram of the observations between before and now, which
// have the same buckets.
func since(now, before []stats.Bucket) []stats.Bucket {
	out := slices.Clone(now)
	for i := range out {
		if i < len(before) {
			out[i].Count -= before[i].Count
		}
	}
	return out
}

// waitAuditQuiet waits until the audit log has not grown for a second.
func (b *bench) waitAuditQuiet(from int64) error {
	size := func() int64 {
		fi, err := os.Stat(b.env.AuditLog())
		if err != nil {
			return from
		}
		return fi.Size()
	}
	last := size()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return wait.PollUntilContextCancel(ctx, time.Second, false, func(context.Context) (bool, error) {
		now := size()
		quiet := now == last
		last = now
		return quiet, nil
	})
}

// auditEvent is the part of an audit.k8s.io/v1 Event the command reads.
type auditEvent struct {
	AuditID   string `json:"auditID"`
	Verb      string `json:"verb"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// countRequests counts the requests in the audit log from offset on, by verb
// and resource (and status code, when it failed), and returns the offset of
// its end. A request appears once per stage; it is counted once.
func countRequests(path string, offset int64) (map[string]int, int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]int{}, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, 0, err
	}
	counts := map[string]int{}
	seen := map[string]bool{}
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			// An incomplete last line is read again next time.
			return counts, offset, nil
		}
		if err != nil {
			return nil, 0, err
		}
		offset += int64(len(line))
		var e auditEvent
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, 0, fmt.Errorf("audit log %s: %w", path, err)
		}
		if seen[e.AuditID] {
			continue
		}
		seen[e.AuditID] = true
		what := e.Verb
		if e.ObjectRef != nil {
			what += " " + e.ObjectRef.Resource
			if e.ObjectRef.Subresource != "" {
				what += "/" + e.ObjectRef.Subresource
			}
		}
		if e.ResponseStatus != nil && e.ResponseStatus.Code >= 300 {
			what += fmt.Sprintf(" (%d)", e.ResponseStatus.Code)
		}
		counts[what]++
	}
}

// processUsage reads the CPU time and the peak resident set of a process.
func processUsage(pid int) (cpu time.Duration, peakRSS int64, err error) {
	if cpu, err = cluster.CPUTime(pid); err != nil {
		return 0, 0, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("/proc/%d/status VmHWM: %w", pid, err)
			}
			peakRSS = kb * 1024
		}
	}
	return cpu, peakRSS, nil
}

// prometheusQueries reads how many instant queries Prometheus has answered,
// from its own metrics.
func prometheusQueries(baseURL string) (float64, error) {
	families, err := sluice.Scrape(baseURL + "/metrics")
	if err != nil {
		return 0, fmt.Errorf("scrape Prometheus' own metrics: %w", err)
	}
	var n float64
	for _, m := range families["prometheus_http_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "handler" && l.GetValue() == "/api/v1/query" {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n, nil
}

// A rollout with passing checks has 11 events: the new revision and the
// promotion on the Canary and on the Deployment, which are its main events,
// and 7 steps on the Canary. A halt adds one per failing check.
const (
	eventsPerRollout     = 11
	mainEventsPerRollout = 4
)

// mainReasons are the reasons of the main events of a rollout with passing
// checks (pkg/shift's step.go).
var mainReasons = []string{"NewRevision", "Promoted"}

// eventCount counts the shifter's events of a round's rollouts.
type eventCount struct {
	written, main int
	// byReason counts the written events by reason, so that a round with
	// more than a rollout's own tells which.
	byReason map[string]int
}

// countEvents counts the shifter's events in ns, but for the Initialized ones
// that come before the rollouts.
func countEvents(ctx context.Context, c client.Client, ns string) (eventCount, error) {
	n := eventCount{byReason: map[string]int{}}
	page := []client.ListOption{client.InNamespace(ns), client.MatchingFields{"source": shift.EventSource}, client.Limit(500)}
	for cont := ""; ; {
		list := &corev1.EventList{}
		if err := c.List(ctx, list, append(page, client.Continue(cont))...); err != nil {
			return n, fmt.Errorf("list the events in %s: %w", ns, err)
		}
		for _, e := range list.Items {
			if e.Reason != "Initialized" {
				n.written++
				n.byReason[e.Reason]++
			}
			if slices.Contains(mainReasons, e.Reason) {
				n.main++
			}
		}
		if cont = list.Continue; cont == "" {
			return n, nil
		}
	}
}

// report is the outcome of one round.
type report struct {
	n int
	// webhookCalls are the calls of --webhooks' receivers, by type.
	webhookCalls hookCalls
	interval     time.Duration
	stepLags     []time.Duration
	unmeasured   int // steps whose weight before was not seen
	// halts are analyses that failed (and held the weight), over all
	// Canaries, and haltRequests what they cost the API server.
	halts, haltRequests int
	// holds are analyses that held the weight without failing (too few
	// requests, or blind), and holdRequests what they cost.
	holds, holdRequests int
	applyToSucceeded    []time.Duration
	// The parts of applyToSucceeded: until the first step (the canary's
	// rollout), the steps, and the promotion (the primary's rollout).
	toFirstStep, steps, promoting []time.Duration
	window                        time.Duration
	cpu                           time.Duration
	cpuBy                         map[string]time.Duration
	peakRSS                       int64
	requests                      map[string]int
	queries                       float64
	events                        eventCount
	// latencies are the shifter's histograms of the round, by name.
	latencies map[string][]stats.Bucket
}

func (tl *timeline) report(n int, interval time.Duration, before, after sample) report {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	r := report{n: n, interval: interval, window: after.at.Sub(before.at), cpu: after.cpu - before.cpu, cpuBy: map[string]time.Duration{},
		peakRSS: after.peakRSS, requests: after.requests, queries: after.queries - before.queries, latencies: map[string][]stats.Bucket{}}
	for name, h := range after.latencies {
		r.latencies[name] = since(h, before.latencies[name])
	}
	for name, cpu := range after.cpuBy {
		r.cpuBy[name] = cpu - before.cpuBy[name]
	}
	for _, c := range tl.canary {
		r.halts += int(c.halts)
		r.haltRequests += int(c.haltRequests)
		r.holds += int(c.holds)
		r.holdRequests += int(c.holdRequests)
		r.applyToSucceeded = append(r.applyToSucceeded, c.succeeded.Sub(c.applied))
		if len(c.steps) > 0 && !c.promoting.IsZero() {
			r.toFirstStep = append(r.toFirstStep, c.steps[0].at.Sub(c.applied))
			r.steps = append(r.steps, c.promoting.Sub(c.steps[0].at))
			r.promoting = append(r.promoting, c.succeeded.Sub(c.promoting))
		}
		// The first step follows the canary's readiness; each later one is
		// due an interval after the one before. A watch may merge two
		// updates into one: a weight seen without the one before it is no
		// measure of a step.
		for i := 1; i < len(c.steps); i++ {
			if c.steps[i].weight-c.steps[i-1].weight != stepWeight {
				r.unmeasured++
				continue
			}
			r.stepLags = append(r.stepLags, c.steps[i].at.Sub(c.steps[i-1].at)-interval)
		}
	}
	for _, d := range [][]time.Duration{r.stepLags, r.applyToSucceeded, r.toFirstStep, r.steps, r.promoting} {
		slices.Sort(d)
	}
	return r
}

// quantile of sorted durations, q in [0, 1].
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1)+0.5)]
}

func (r report) totalRequests() int {
	total := 0
	for _, n := range r.requests {
		total += n
	}
	return total
}

func (r report) print(w io.Writer) {
	secs := func(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }
	fmt.Fprintf(w, "\n%d canaries, interval %s, measured over %s\n", r.n, r.interval, secs(r.window))
	fmt.Fprintf(w, "  step lag behind schedule  p50 %s  p99 %s  max %s  (%d steps; %d not measured)\n",
		secs(quantile(r.stepLags, 0.5)), secs(quantile(r.stepLags, 0.99)), secs(quantile(r.stepLags, 1)), len(r.stepLags), r.unmeasured)
	fmt.Fprintf(w, "  halted analyses           %d  (%d API requests)\n", r.halts, r.haltRequests)
	fmt.Fprintf(w, "  held analyses             %d  (%d API requests; too few requests to judge, or blind)\n", r.holds, r.holdRequests)
	if len(r.webhookCalls) > 0 {
		fmt.Fprintf(w, "  webhook calls             %d rollout (answered at once), %d rollback and %d event (never answered, 2s timeout)\n",
			r.webhookCalls["rollout"], r.webhookCalls["rollback"], r.webhookCalls["event"])
	}
	fmt.Fprintf(w, "  apply to Succeeded        median %s  max %s\n",
		secs(quantile(r.applyToSucceeded, 0.5)), secs(quantile(r.applyToSucceeded, 1)))
	fmt.Fprintf(w, "    of which, medians       %s to the first step (the canary's rollout), %s of steps, %s promoting (the primary's rollout)\n",
		secs(quantile(r.toFirstStep, 0.5)), secs(quantile(r.steps, 0.5)), secs(quantile(r.promoting, 0.5)))
	fmt.Fprintf(w, "  shifter                   %.3f cores on average, peak RSS since it started %.1f MiB\n",
		r.cpu.Seconds()/r.window.Seconds(), float64(r.peakRSS)/(1<<20))
	names := slices.SortedFunc(maps.Keys(r.cpuBy), func(a, b string) int { return cmp.Compare(r.cpuBy[b], r.cpuBy[a]) })
	var parts []string
	for _, name := range names {
		parts = append(parts, fmt.Sprintf("%s %.2f", name, r.cpuBy[name].Seconds()/r.window.Seconds()))
	}
	fmt.Fprintf(w, "  cores used, by process    %s\n", strings.Join(parts, ", "))
	fmt.Fprintf(w, "  API requests per rollout  %.1f  (%d in all)\n", float64(r.totalRequests())/float64(r.n), r.totalRequests())
	kinds := make([]string, 0, len(r.requests))
	for k := range r.requests {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "      %-40s %.2f\n", k, float64(r.requests[k])/float64(r.n))
	}
	fmt.Fprintf(w, "  events per rollout        %.2f written of %.2f; main events %.2f of %d\n",
		float64(r.events.written)/float64(r.n), float64(eventsPerRollout*r.n+r.haltRequests-r.halts+r.holds)/float64(r.n),
		float64(r.events.main)/float64(r.n), mainEventsPerRollout)
	if r.events.written != eventsPerRollout*r.n {
		reasons := slices.Sorted(maps.Keys(r.events.byReason))
		var parts []string
		for _, reason := range reasons {
			parts = append(parts, fmt.Sprintf("%s %d", reason, r.events.byReason[reason]))
		}
		fmt.Fprintf(w, "      by reason: %s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintf(w, "  Prometheus queries        %.2f/s  (%.0f in all)\n", r.queries/r.window.Seconds(), r.queries)
	fmt.Fprintf(w, "  the shifter's time        (p50, p99 from its histograms)\n")
	for _, h := range latencyHistograms {
		b := r.latencies[h.name]
		if len(b) == 0 {
			fmt.Fprintf(w, "      %-40s not exported\n", h.name)
			continue
		}
		fmt.Fprintf(w, "      %-40s %.3fs, %.3fs  (%.0f)\n", h.name,
			stats.HistogramQuantile(0.5, b), stats.HistogramQuantile(0.99, b), b[0].Count)
	}
}
