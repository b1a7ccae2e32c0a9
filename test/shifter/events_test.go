package shifter_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"sluice.dev/sluice/certs"
	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/shift"
	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/meshsim/telemetry"
)

// TestStoppedShifterWritesItsQueuedEvents stops the shifter (SIGTERM) right
// after the first step, while the API server has not yet stored any event of
// the rollout: each is held by a webhook until the shifter's reconcilers have
// stopped. Once the restarted shifter has finished the rollout, the Canary
// and the Deployment tell all of it, each event once.
func TestStoppedShifterWritesItsQueuedEvents(t *testing.T) {
	ns, c := initialized(t, manifest, telemetry.Behaviour{Latency: 20 * time.Millisecond})
	gate := holdEvents(t, ns)
	kubectlApply(t, ns, manifest("example.com/web:v2"))
	waitStatus(t, c, ns, "the first step", time.Minute, func(st canary.CanaryStatus) bool { return st.CanaryWeight >= 20 })
	cluster.Eventually(t, 10*time.Second, "an event of the rollout held", func(context.Context) error {
		if len(gate.seen()) == 0 {
			return fmt.Errorf("none reached the API server")
		}
		return nil
	})

	logPath := shifter.Log()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		shifter.Stop()
	}()
	cluster.Eventually(t, 30*time.Second, "the stopping shifter's reconcilers stopped", func(context.Context) error {
		log, err := os.ReadFile(logPath)
		if err != nil {
			return err
		}
		// controller-runtime's line once every runnable has returned.
		if !strings.Contains(string(log), "Wait completed, proceeding to shutdown the manager") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	held := gate.seen()
	gate.open()
	<-stopped
	if err := shifter.Start(); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, c, ns, canary.PhaseSucceeded, 2*time.Minute)
	want := append([]string{"Initialization done! web." + ns}, rolloutEvents(ns)...)
	onDeployment := []string{want[1], want[len(want)-1]}
	cluster.Eventually(t, 10*time.Second, "every event once", func(context.Context) error {
		got, dep := canaryEvents(t, ns), shifterEvents(t, ns, "Deployment")
		if !slices.Equal(got, want) || !slices.Equal(dep, onDeployment) {
			return fmt.Errorf("held when the shifter stopped:\n  %s\non the Canary:\n  %s\non the Deployment:\n  %s",
				strings.Join(held, "\n  "), strings.Join(got, "\n  "), strings.Join(dep, "\n  "))
		}
		return nil
	})
}

// TestFourRolloutsInAFewMinutesTellEverything: client-go's recorder lets an
// object have 25 events and then one per 5 minutes, and folds more than ten
// of one reason into one; a Deployment rolled out four times in a row keeps
// every event of each rollout.
func TestFourRolloutsInAFewMinutesTellEverything(t *testing.T) {
	ns, c := initialized(t, manifest, telemetry.Behaviour{Latency: 20 * time.Millisecond})
	want := []string{"Initialization done! web." + ns}
	var onDeployment []string
	revision := ""
	for _, v := range []string{"v2", "v3", "v4", "v5"} {
		kubectlApply(t, ns, manifest("example.com/web:"+v))
		cr := waitStatus(t, c, ns, v+" promoted", 2*time.Minute, func(st canary.CanaryStatus) bool {
			return st.Phase == canary.PhaseSucceeded && st.CanaryRevision != revision
		})
		revision = cr.Status.CanaryRevision
		story := rolloutEvents(ns)
		want = append(want, story...)
		onDeployment = append(onDeployment, story[0], story[len(story)-1])
	}
	cluster.Eventually(t, 10*time.Second, "every event of the four rollouts", func(context.Context) error {
		got, dep := canaryEvents(t, ns), shifterEvents(t, ns, "Deployment")
		if !slices.Equal(got, want) || !slices.Equal(dep, onDeployment) {
			return fmt.Errorf("%d events on the Canary, %d on the Deployment; want %d and %d. On the Canary:\n  %s",
				len(got), len(dep), len(want), len(onDeployment), strings.Join(got, "\n  "))
		}
		return nil
	})
}

// eventGate holds the shifter's event writes in one namespace: a validating
// webhook, served by the test, answers them only once the gate is open.
type eventGate struct {
	opened   chan struct{}
	openOnce sync.Once
	mu       sync.Mutex
	held     []string // the messages of the shifter's events it was asked about
	probed   bool     // it was asked about an event of someone else
}

func (g *eventGate) open() { g.openOnce.Do(func() { close(g.opened) }) }

func (g *eventGate) seen() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.held)
}

// holdEvents closes a gate on the creation of the shifter's events in ns, and
// waits until the API server calls it. The gate opens when the test ends.
func holdEvents(t *testing.T, ns string) *eventGate {
	t.Helper()
	g := &eventGate{opened: make(chan struct{})}
	serving, err := hook.CA.Issue(certs.Request{CommonName: "event-gate", Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(serving.CertPEM, serving.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	handler := admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
		e := &corev1.Event{}
		if err := json.Unmarshal(req.Object.Raw, e); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		g.mu.Lock()
		if e.Source.Component != shift.EventSource {
			g.probed = true
			g.mu.Unlock()
			return admission.Allowed("")
		}
		g.held = append(g.held, e.Message)
		g.mu.Unlock()
		select {
		case <-g.opened:
		case <-ctx.Done():
		}
		return admission.Allowed("")
	})
	srv := httptest.NewUnstartedServer(&webhook.Admission{
		Handler: handler, LogConstructor: func(logr.Logger, *admission.Request) logr.Logger { return logr.Discard() },
	})
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	// Cleanups run last first: the gate opens, so that Close, which waits
	// for the requests it serves, returns.
	t.Cleanup(srv.Close)
	t.Cleanup(g.open)

	none := admissionregistrationv1.SideEffectClassNone
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "event-gate-" + ns},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "events.gate.sluice.dev",
			AdmissionReviewVersions: []string{"v1"},
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &srv.URL, CABundle: hook.CAPEM},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"events"}},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: ns}},
			SideEffects:       &none,
			// The longest the API server waits; a write held longer fails.
			TimeoutSeconds: ptr.To[int32](30),
		}},
	}
	cs := env.Clientset(t)
	api := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	if _, err := api.Create(t.Context(), cfg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Delete(context.Background(), cfg.Name, metav1.DeleteOptions{}) })
	cluster.Eventually(t, 30*time.Second, "the event gate in place", func(ctx context.Context) error {
		_, err := cs.CoreV1().Events(ns).Create(ctx, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{GenerateName: "probe-"},
			InvolvedObject: corev1.ObjectReference{Kind: "Deployment", APIVersion: "apps/v1", Namespace: ns, Name: app},
			Reason:         "Probe", Message: "is the gate in place?", Type: corev1.EventTypeNormal,
			Source: corev1.EventSource{Component: "test"},
		}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		if !g.probed {
			return fmt.Errorf("an event was created without asking the gate")
		}
		return nil
	})
	return g
}
