package sluice

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/shift"
	"sluice.dev/sluice/test/cluster"
)

// App is an opted-in Deployment of one container, as the tests apply it.
type App struct {
	Name, Image string
	Replicas    int
	// Annotations are lines under metadata.annotations after the opt-in,
	// such as `sluice.dev/step-weight: "20"`.
	Annotations []string
	// Container are lines of the container's fields after its image, such as
	// "ports:" and "  - containerPort: 8080".
	Container []string
}

// YAML is the Deployment's manifest. Tests edit it as text, so its layout is
// fixed: two spaces per level, the container's fields at ten.
func (a App) YAML() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: %s\n  annotations:\n    sluice.dev/canary: enabled\n", a.Name)
	for _, line := range a.Annotations {
		b.WriteString("    " + line + "\n")
	}
	fmt.Fprintf(&b, `spec:
  replicas: %d
  selector:
    matchLabels:
      app: %s
  template:
    metadata:
      labels:
        app: %s
    spec:
      containers:
        - name: app
          image: %s
`, a.Replicas, a.Name, a.Name, a.Image)
	for _, line := range a.Container {
		b.WriteString("          " + line + "\n")
	}
	return b.String()
}

// Port8080 are the container lines of an app that serves on port 8080.
var Port8080 = []string{"ports:", "  - containerPort: 8080"}

// Apply applies yaml to namespace ns with kubectl, as the cluster's admin.
func Apply(t testing.TB, env *cluster.Cluster, ns, yaml string) {
	t.Helper()
	cmd := env.Kubectl(t.Context(), "apply", "-n", ns, "-f", "-")
	cmd.Stdin = strings.NewReader(yaml)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

// NewClient is a client of the cluster's admin that knows sluice's types.
func NewClient(t testing.TB, env *cluster.Cluster) client.Client {
	t.Helper()
	scheme, err := shift.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.AdminConfig(), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// WaitCanary waits until the status of the Canary key satisfies ok, and
// returns the Canary.
func WaitCanary(t testing.TB, c client.Client, key client.ObjectKey, what string, timeout time.Duration,
	ok func(canary.CanaryStatus) bool) *canary.Canary {
	t.Helper()
	cr := &canary.Canary{}
	cluster.Eventually(t, timeout, what, func(ctx context.Context) error {
		if err := c.Get(ctx, key, cr); err != nil {
			return err
		}
		if st := cr.Status; !ok(st) {
			return fmt.Errorf("phase %s, weight %d, failed checks %d (%s)", st.Phase, st.CanaryWeight, st.FailedChecks, st.Message)
		}
		return nil
	})
	return cr
}

// EventMessages lists the messages of the shifter's events about the object
// of kind named name in ns, oldest first.
func EventMessages(t testing.TB, env *cluster.Cluster, ns, kind, name string) []string {
	t.Helper()
	events, err := Events(t.Context(), env.Clientset(t), ns, kind, name)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(events))
	for _, e := range events {
		out = append(out, e.Message)
	}
	return out
}

// Count is how many times s stands in list.
func Count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

// Phases reads the shifter's sluice_canary_phase from its metrics endpoint on
// a loopback port: the phase of each canary it has reconciled, by namespace.
func Phases(port int) (map[string]canary.Phase, error) {
	families, err := Metrics(port)
	if err != nil {
		return nil, err
	}
	phases := map[string]canary.Phase{}
	for _, m := range families["sluice_canary_phase"].GetMetric() {
		if m.GetGauge().GetValue() != 1 {
			continue
		}
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		phases[labels["namespace"]] = canary.Phase(labels["phase"])
	}
	return phases, nil
}

// QuickSettings are the annotations of an opted-in Deployment that the
// integration tests roll out fast: steps 20, 40, 60, 80 (max-weight 70), a
// check every 2s over a 5s window, threshold 3; then extra.
func QuickSettings(extra ...string) []string {
	return append([]string{
		`sluice.dev/step-weight: "20"`, `sluice.dev/max-weight: "70"`, "sluice.dev/interval: 2s",
		"sluice.dev/analysis-window: 5s", `sluice.dev/threshold: "3"`,
	}, extra...)
}
