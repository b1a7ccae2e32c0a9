package alert

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"sluice.dev/sluice/pkg/canary"
)

var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// hang answers when the test ends, as a receiver that is down but accepts
// connections does, or stops when the sender hangs up: the receiver's
// Close waits for its handlers. received gets each request as it arrives.
func hang(t *testing.T, received chan<- struct{}) http.HandlerFunc {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	return func(_ http.ResponseWriter, req *http.Request) {
		received <- struct{}{}
		select {
		case <-release:
		case <-req.Context().Done():
		}
	}
}

// await waits for a request on received, for at most a while.
func await(t *testing.T, received <-chan struct{}) {
	t.Helper()
	select {
	case <-received:
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver got no request")
	}
}

func TestSeverityFilter(t *testing.T) {
	tests := []struct {
		sev  canary.Severity
		want []string
	}{
		{"", []string{"all"}},
		{canary.SeverityInfo, []string{"all"}},
		{canary.SeverityWarn, []string{"all", "warn"}},
		{canary.SeverityError, []string{"all", "error", "warn"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.sev), func(t *testing.T) {
			r := newReceiver(t, ok)
			reg := prometheus.NewRegistry()
			n := New(nil, reg, WithClock(clocktesting.NewFakePassiveClock(start)))
			alerts := []ResolvedAlert{
				alertTo(r, "all", canary.AlertGeneric, "", nil),
				alertTo(r, "warn", canary.AlertGeneric, canary.SeverityWarn, nil),
				alertTo(r, "error", canary.AlertGeneric, canary.SeverityError, nil),
			}
			n.Notify(t.Context(), alerts, Message{Namespace: "shop", Name: "web", Reason: "Test", Severity: tt.sev})
			n.Close(context.Background())
			var got []string
			for _, req := range r.got() {
				got = append(got, strings.TrimPrefix(req.path, secretPath+"/"))
				// A message without a time is sent with the present.
				if ts := at[string](t, req.body, "time"); ts != "2026-03-01T12:00:00Z" {
					t.Errorf("time %q, want the clock's", ts)
				}
			}
			if slices.Sort(got); !slices.Equal(got, tt.want) {
				t.Errorf("sent to %v, want %v", got, tt.want)
			}
			// The alerts filtered out are not counted.
			want := fmt.Sprintf(`
# HELP sluice_alerts_total %s
# TYPE sluice_alerts_total counter
sluice_alerts_total{provider="generic",result="sent"} %d
`, helpOf(t, reg), len(tt.want))
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sluice_alerts_total"); err != nil {
				t.Error(err)
			}
		})
	}
}

// helpOf is the help text of sluice_alerts_total in reg.
func helpOf(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "sluice_alerts_total" {
			return f.GetHelp()
		}
	}
	t.Fatal("sluice_alerts_total is not registered")
	return ""
}

func TestRateLimit(t *testing.T) {
	r := newReceiver(t, ok)
	clock := clocktesting.NewFakePassiveClock(start)
	n, _ := newNotifier(t, WithClock(clock))
	alerts := []ResolvedAlert{
		alertTo(r, "limited", canary.AlertGeneric, "", nil),
		alertTo(r, "unlimited", canary.AlertGeneric, "", ptr.To(time.Duration(0))),
	}
	steps := []struct {
		after  time.Duration
		name   string
		reason string
		sev    canary.Severity
	}{
		{0, "web", "NewRevision", canary.SeverityInfo},                 // sent
		{10 * time.Second, "web", "Advanced", canary.SeverityInfo},     // held back
		{20 * time.Second, "api", "NewRevision", canary.SeverityInfo},  // sent: another canary
		{30 * time.Second, "web", "Halted", canary.SeverityWarn},       // held back
		{40 * time.Second, "web", "RollingBack", canary.SeverityError}, // sent: an error, 2 held back
		{50 * time.Second, "web", "Reverted", canary.SeverityInfo},     // held back: 10s after the error
		{100 * time.Second, "web", "NewRevision", ""},                  // sent: 1m after the error, 1 held back
	}
	for _, s := range steps {
		clock.SetTime(start.Add(s.after))
		n.Notify(t.Context(), alerts, Message{Namespace: "shop", Name: s.name, Reason: s.reason, Severity: s.sev})
	}
	n.Close(context.Background())
	got := map[string][]string{}
	for _, req := range r.got() {
		held, _ := req.body["heldBack"].(float64)
		alert := strings.TrimPrefix(req.path, secretPath+"/")
		got[alert] = append(got[alert], fmt.Sprintf("%s %s, %v held back", at[string](t, req.body, "name"), at[string](t, req.body, "reason"), held))
	}
	want := map[string][]string{
		"limited": {"api NewRevision, 0 held back", "web NewRevision, 0 held back", "web NewRevision, 1 held back", "web RollingBack, 2 held back"},
	}
	for _, s := range steps {
		want["unlimited"] = append(want["unlimited"], s.name+" "+s.reason+", 0 held back")
	}
	for alert := range want {
		slices.Sort(got[alert])
		slices.Sort(want[alert])
		if !slices.Equal(got[alert], want[alert]) {
			t.Errorf("%s got:\n%s\nwant:\n%s", alert, strings.Join(got[alert], "\n"), strings.Join(want[alert], "\n"))
		}
	}
	if sent, limited := count(n, canary.AlertGeneric, resultSent), count(n, canary.AlertGeneric, resultLimited); sent != 4+len(steps) || limited != 3 {
		t.Errorf("counted %d sent and %d limited, want %d and 3", sent, limited, 4+len(steps))
	}
}

func TestFailures(t *testing.T) {
	tests := []struct {
		name     string
		receiver func(t *testing.T) *receiver
		want     string
	}{
		{
			name: "the receiver answers 500",
			receiver: func(t *testing.T) *receiver {
				return newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
					http.Error(w, "boom", http.StatusInternalServerError)
				})
			},
			want: "answered 500 Internal Server Error: boom",
		},
		{
			name: "the receiver is down",
			receiver: func(t *testing.T) *receiver {
				r := newReceiver(t, ok)
				r.Close()
				return r
			},
			want: "connection refused",
		},
		{
			name: "the receiver hangs",
			receiver: func(t *testing.T) *receiver {
				return newReceiver(t, hang(t, make(chan struct{}, 1)))
			},
			want: "no answer within 100ms",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.receiver(t)
			n, logs := newNotifier(t, WithTimeout(100*time.Millisecond))
			n.Notify(t.Context(), []ResolvedAlert{alertTo(r, "team", canary.AlertSlack, "", nil)}, failed)
			n.Close(context.Background())
			if f := count(n, canary.AlertSlack, resultFailed); f != 1 {
				t.Errorf("counted %d failed, want 1", f)
			}
			if !strings.Contains(logs.String(), tt.want) {
				t.Errorf("the logs do not say %q:\n%s", tt.want, logs)
			}
			if strings.Contains(logs.String(), "s3cr3t") {
				t.Errorf("the logs show the secret URL:\n%s", logs)
			}
		})
	}
}

func TestNotifyNeverWaits(t *testing.T) {
	received := make(chan struct{}, 2)
	r := newReceiver(t, hang(t, received))
	n, _ := newNotifier(t, WithTimeout(100*time.Millisecond), WithConcurrency(1), WithQueueSize(1))
	alerts := []ResolvedAlert{alertTo(r, "team", canary.AlertDiscord, "", nil)}
	notify := func(name string) {
		n.Notify(t.Context(), alerts, Message{Namespace: "shop", Name: name, Reason: "NewRevision"})
	}
	notify("web")
	// The only sender is stuck on web's alert: api's waits in the queue,
	// the rest find it full and are dropped, at once.
	await(t, received)
	for _, name := range []string{"api", "db", "cache", "queue"} {
		notify(name)
	}
	if d := count(n, canary.AlertDiscord, resultDropped); d != 3 {
		t.Errorf("counted %d dropped, want 3", d)
	}
	n.Close(context.Background())
	if f, s := count(n, canary.AlertDiscord, resultFailed), count(n, canary.AlertDiscord, resultSent); f != 2 || s != 0 {
		t.Errorf("counted %d failed and %d sent after the timeouts, want 2 and 0", f, s)
	}
	notify("late")
	if d := count(n, canary.AlertDiscord, resultDropped); d != 4 {
		t.Errorf("counted %d dropped after Close, want 4", d)
	}
}

func TestCloseGivesUp(t *testing.T) {
	received := make(chan struct{}, 1)
	r := newReceiver(t, hang(t, received))
	n, _ := newNotifier(t, WithTimeout(time.Hour), WithConcurrency(1), WithQueueSize(2))
	alerts := []ResolvedAlert{alertTo(r, "team", canary.AlertMSTeams, "", nil)}
	n.Notify(t.Context(), alerts, Message{Namespace: "shop", Name: "web"})
	await(t, received)
	n.Notify(t.Context(), alerts, Message{Namespace: "shop", Name: "api"})
	n.Notify(t.Context(), alerts, Message{Namespace: "shop", Name: "db"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n.Close(ctx)
	if f, d := count(n, canary.AlertMSTeams, resultFailed), count(n, canary.AlertMSTeams, resultDropped); f != 1 || d != 2 {
		t.Errorf("counted %d failed and %d dropped, want the one in flight failed and the two queued dropped", f, d)
	}
}

func TestSweep(t *testing.T) {
	r := newReceiver(t, ok)
	clock := clocktesting.NewFakePassiveClock(start)
	n, _ := newNotifier(t, WithClock(clock))
	alerts := []ResolvedAlert{alertTo(r, "team", canary.AlertGeneric, "", nil)}
	for _, s := range []struct {
		after time.Duration
		name  string
		want  []string
	}{
		{0, "web", []string{"web"}},
		{23 * time.Hour, "api", []string{"api", "web"}},
		// web's last alert is more than a day old.
		{24*time.Hour + 30*time.Minute, "db", []string{"api", "db"}},
	} {
		clock.SetTime(start.Add(s.after))
		n.Notify(t.Context(), alerts, Message{Namespace: "shop", Name: s.name})
		n.mu.Lock()
		var got []string
		for k := range n.limits {
			got = append(got, k.name)
		}
		n.mu.Unlock()
		if slices.Sort(got); !slices.Equal(got, s.want) {
			t.Errorf("after %s the rate limit remembers %v, want %v", s.after, got, s.want)
		}
	}
}
