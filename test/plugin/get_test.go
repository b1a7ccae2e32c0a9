package plugin_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/test/sluice"
)

// TestGetAndStatus: the table and the story of a canary that holds at its
// first step, as the admin sees them.
func TestGetAndStatus(t *testing.T) {
	ns := initialized(t, nil)
	contains(t, "get", admin(t, "get", "-n", ns), "NAME", "PHASE", "WEIGHT", "web", "Initialized", "[..........]   0%")

	sluice.Apply(t, env, ns, manifest("example.com/web:v2"))
	cr := waitCanary(t, ns, "canary weight 20", func(st canary.CanaryStatus) bool { return st.CanaryWeight == 20 })
	rev := cr.Status.CanaryRevision

	contains(t, "get web", admin(t, "get", "web", "-n", ns), "Progressing", "[##........]  20%", "1/4", "0/3")
	contains(t, "get -o wide", admin(t, "get", "-n", ns, "-o", "wide"), "PRIMARY", "CANARY", cr.Status.PrimaryRevision, rev)
	contains(t, "get -o yaml", admin(t, "get", "web", "-n", ns, "-o", "yaml"),
		"apiVersion: sluice.dev/v1alpha1", "kind: Canary", "canaryRevision: "+rev)

	story := admin(t, "status", "web", "-n", ns)
	contains(t, "status", story,
		"Phase:         Progressing",
		"Primary:       revision "+cr.Status.PrimaryRevision+"   app=example.com/web:v1   web 2/2 ready",
		"Canary:        revision "+rev+"   app=example.com/web:v2   web-canary ",
		"step 1/4 of 20, 40, 60, 80",
		"next check ",
		"Events:        since revision "+rev,
		"New revision detected! Scaling up web-canary."+ns,
		"Advance web."+ns+" canary weight 20",
	)
	if strings.Contains(story, "Initialization done!") {
		t.Errorf("status shows an event of before the revision:\n%s", story)
	}
	contains(t, "status --all-events", admin(t, "status", "web", "-n", ns, "--all-events"), "Initialization done! web."+ns)

	r := run(t, env.Kubeconfig, time.Minute, "status", "nothing", "-n", ns)
	if r.code != 1 || !strings.Contains(r.stderr, "error: no Canary "+ns+"/nothing: sluice makes one for each Deployment annotated") {
		t.Errorf("status of a missing Canary: %s", r)
	}
}

// TestGetAllNamespacesJSON: -A -o json prints a List of every Canary.
func TestGetAllNamespacesJSON(t *testing.T) {
	ns := initialized(t, nil)
	var list struct {
		Kind  string          `json:"kind"`
		Items []canary.Canary `json:"items"`
	}
	if err := json.Unmarshal([]byte(admin(t, "get", "-A", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, cr := range list.Items {
		if cr.Namespace == ns && cr.Name == app {
			found = cr.Kind == "Canary" && cr.APIVersion == "sluice.dev/v1alpha1" && cr.Status.Phase == canary.PhaseInitialized
		}
		if len(cr.ManagedFields) > 0 {
			t.Errorf("Canary %s/%s printed with its managed fields", cr.Namespace, cr.Name)
		}
	}
	if list.Kind != "List" || !found {
		t.Errorf("get -A -o json: kind %q; want a List with Canary %s/web Initialized, got %+v", list.Kind, ns, list.Items)
	}
	contains(t, "get -A", admin(t, "get", "-A"), "NAMESPACE", ns)
}

// TestGetWatch: outside a terminal, get --watch prints a row each time a
// canary changes.
func TestGetWatch(t *testing.T) {
	ns := initialized(t, nil)
	waitFor := watch(t, "get-watch", "get", "-n", ns, "--watch")
	waitFor(30*time.Second, "NAME", "Initialized")
	sluice.Apply(t, env, ns, manifest("example.com/web:v2"))
	out := waitFor(time.Minute, "Progressing   [..........]   0%   0/4", "Progressing   [##........]  20%   1/4")
	if strings.Contains(out, "\x1b[") {
		t.Errorf("get --watch wrote escape codes outside a terminal:\n%q", out)
	}
}

// TestStatusShowsFoldedEvents: an event that Kubernetes folded into an
// earlier one of the same message shows where it happened again, with its
// count, and status --watch shows it again each time its count grows.
func TestStatusShowsFoldedEvents(t *testing.T) {
	ns := initialized(t, nil)
	sluice.Apply(t, env, ns, manifest("example.com/web:v2"))
	cr := waitCanary(t, ns, "canary weight 20", func(st canary.CanaryStatus) bool { return st.CanaryWeight == 20 })
	cs := env.Clientset(t)
	// An event of the day before, which happened again now.
	day := time.Now().Add(-24 * time.Hour)
	e, err := cs.CoreV1().Events(ns).Create(t.Context(), &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "web.folded"},
		InvolvedObject: corev1.ObjectReference{APIVersion: canary.GroupVersion.String(), Kind: "Canary", Namespace: ns, Name: app,
			UID: cr.UID},
		Type: corev1.EventTypeWarning, Reason: "Repeated", Message: "the same message again",
		Count: 2, FirstTimestamp: metav1.NewTime(day), LastTimestamp: metav1.Now(),
		Source: corev1.EventSource{Component: "test"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "status", admin(t, "status", "web", "-n", ns), "the same message again (x2 since "+day.Format(time.DateTime))

	waitFor := watch(t, "status-watch", "status", "web", "-n", ns, "--watch")
	waitFor(30*time.Second, "the same message again (x2 since", "Phase:         Progressing")
	e.Count, e.LastTimestamp = 3, metav1.NewTime(time.Now().Add(time.Second))
	if _, err := cs.CoreV1().Events(ns).Update(t.Context(), e, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(30*time.Second, "the same message again (x3 since")
}

// TestKubectlRunsThePlugin: kubectl finds kubectl-sluice on the PATH and
// runs it as kubectl sluice.
func TestKubectlRunsThePlugin(t *testing.T) {
	ns := initialized(t, nil)
	for _, tc := range []struct {
		args []string
		want string
	}{
		// The same line as kubectl-sluice --version: a go build stamps the
		// version, which this test binary may not know.
		{[]string{"sluice", "version"}, admin(t, "--version")},
		{[]string{"sluice", "get", "-n", ns}, "Initialized"},
	} {
		// kubectl takes no flags before a plugin's name: the kubeconfig comes
		// from the environment.
		cmd := exec.CommandContext(t.Context(), env.Bin("kubectl"), tc.args...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig, "PATH="+binDir()+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(tc.args, " "), err, out)
		}
		contains(t, "kubectl "+strings.Join(tc.args, " "), string(out), tc.want)
	}
	// Completion of canary names, as a shell asks for it.
	contains(t, "completion", admin(t, "__complete", "status", "-n", ns, ""), "web\n:4")
}
