package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/test/meshsim/mesh"
	"sluice.dev/sluice/test/sluice"
)

// envSeq names each template the suite applies (env SEQ=<app>.<line>), so
// that any template seen on a primary or in a canary maps back to the line
// that sent it.
const envSeq = "SEQ"

// guard is in every refusal of the policy that stands in for the webhook.
const guard = "sluice-webhook-guard"

// settings are the canary settings of every Deployment: quick rollouts of
// two steps, promoted after one passing check, failed after two failing.
func settings(interval time.Duration) []string {
	return []string{
		`sluice.dev/step-weights: "25,50"`, `sluice.dev/max-weight: "50"`, "sluice.dev/interval: " + interval.String(),
		`sluice.dev/threshold: "2"`, "sluice.dev/analysis-window: 4s", "sluice.dev/progress-deadline: 1m",
	}
}

// driver runs the schedule of one Deployment.
type driver struct {
	r     *runner
	app   *app
	lines *lines
	// replicas is the Deployment's replicas as the suite last set them;
	// kubectl apply sends them with every manifest.
	replicas int
	// bad are the templates with ERROR_RATE=1.
	bad map[string]bool
}

// want is the state a manifest asks for.
type want struct {
	template string
	optOut   bool
	skip     bool
}

func (d *driver) manifest(w want) string {
	annotations := settings(d.r.o.interval)
	if w.skip {
		annotations = append(annotations, canary.AnnotationSkipAnalysis+`: "true"`)
	}
	container := append(slices.Clone(sluice.Port8080), "env:", "  - name: "+envSeq, fmt.Sprintf("    value: %q", w.template))
	if d.bad[w.template] {
		container = append(container, "  - name: "+mesh.EnvErrorRate, `    value: "1"`)
	}
	y := sluice.App{Name: d.app.name, Image: "example.com/app:1", Replicas: d.replicas, Annotations: annotations, Container: container}.YAML()
	if w.optOut {
		y = strings.Replace(y, canary.AnnotationEnabled+": "+canary.EnabledValue, canary.AnnotationEnabled+": "+canary.DisabledValue, 1)
	}
	return y
}

// env is the environment of template t, as the manifest has it.
func (d *driver) env(t string) []corev1.EnvVar {
	env := []corev1.EnvVar{{Name: envSeq, Value: t}}
	if d.bad[t] {
		env = append(env, corev1.EnvVar{Name: mesh.EnvErrorRate, Value: "1"})
	}
	return env
}

// run runs lines until the runner stops the updates.
func (d *driver) run(ctx context.Context) {
	for !d.r.stopping() && ctx.Err() == nil {
		l := d.lines.next()
		d.r.pause(ctx, l.pause)
		l.ran = time.Now()
		d.r.ledger.mu.Lock()
		d.app.lines = append(d.app.lines, l)
		d.r.ledger.mu.Unlock()
		d.do(ctx, l)
	}
}

// do runs one line.
func (d *driver) do(ctx context.Context, l line) {
	switch l.act {
	case applyGood, applyBad:
		if l.act == applyBad {
			d.bad[l.template] = true
		}
		u := d.send(ctx, l, l.template, want{template: l.template})
		if u.result == diverted {
			d.waitFor(ctx, u, l.until)
		}
	case skip, optOut:
		w := want{template: l.template, skip: l.act == skip, optOut: l.act == optOut}
		d.send(ctx, l, l.template, w)
		d.r.pause(ctx, 2*time.Second)
		// Back in sluice's care, with the same template: the guard refuses
		// it while the webhook is down and a canary is left behind.
		back := want{template: l.template}
		for d.send(ctx, l, "", back).result > passed && ctx.Err() == nil {
			d.r.pause(ctx, time.Second)
		}
	case cancel:
		primary := d.primary()
		if primary != "" {
			d.send(ctx, l, primary, want{template: primary})
		}
	case scale:
		d.replicas = l.replicas
		if l.path == clientGo {
			d.send(ctx, l, "", want{})
			return
		}
		// The scale subresource: the webhook does not see it.
		u := d.begin(l, "")
		u.result = passed
		if _, err := output(d.r.env.Kubectl(ctx, "scale", "-n", d.r.ns, "--request-timeout=20s", "deployment/"+d.app.name,
			"--replicas="+strconv.Itoa(l.replicas))); err != nil {
			u.result, u.err = notApplied, err.Error()
		}
		d.end(u)
	case undo:
		d.undo(ctx, l)
	}
}

// primary is the template the Deployment runs, as last seen.
func (d *driver) primary() string {
	d.r.ledger.mu.Lock()
	defer d.r.ledger.mu.Unlock()
	if n := len(d.app.versions); n > 0 {
		return d.app.versions[n-1].primary
	}
	return ""
}

// send writes the Deployment as line l says by l's client, sending template
// t (or none: scale, back in care), and records the answer. A request that
// fails in transport is sent again for a minute: updates are idempotent.
func (d *driver) send(ctx context.Context, l line, t string, w want) *update {
	u := d.begin(l, t)
	var obj *appsv1.Deployment
	var err error
	_ = wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		if l.path == kubectlApply {
			obj, err = d.apply(ctx, d.manifest(w))
		} else {
			obj, err = d.update(ctx, l, w)
		}
		return err == nil || strings.Contains(err.Error(), guard) || strings.Contains(err.Error(), "denied"), nil
	})
	switch {
	case err == nil:
		u.rv = parseRV(obj.ResourceVersion)
		v := versionOf(obj)
		u.pendingTemplate, u.pendingRevision, u.primary = v.pendingTemplate, v.pendingRevision, v.primary
		u.result = classify(u, v)
		if u.result == passed {
			// kubectl apply sends nothing when the manifest changes nothing.
			u.template = ""
		}
	case strings.Contains(err.Error(), guard):
		u.result, u.err = refused, err.Error()
	default:
		u.result, u.err = notApplied, err.Error()
	}
	d.end(u)
	return u
}

// classify tells what the API server did with an accepted update from the
// object it returned.
func classify(u *update, v version) result {
	switch {
	case u.template != "" && v.pendingTemplate == u.template:
		return diverted
	case u.template != "" && v.primary == u.template && u.line.act != cancel:
		return plain
	case v.pendingTemplate == "" && u.line.act != scale:
		return cleared
	default:
		return passed
	}
}

func (d *driver) begin(l line, t string) *update {
	d.r.ledger.mu.Lock()
	defer d.r.ledger.mu.Unlock()
	d.r.ledger.updates++
	u := &update{id: d.r.ledger.updates, line: l, template: t, sent: time.Now()}
	d.app.inflight = u.sent
	return u
}

func (d *driver) end(u *update) {
	d.r.ledger.mu.Lock()
	defer d.r.ledger.mu.Unlock()
	d.app.updates = append(d.app.updates, u)
	d.app.inflight = time.Time{}
}

// apply runs kubectl apply and returns the object the API server stored.
func (d *driver) apply(ctx context.Context, manifest string) (*appsv1.Deployment, error) {
	cmd := d.r.env.Kubectl(ctx, "apply", "-n", d.r.ns, "--request-timeout=20s", "-o", "json", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	out, err := output(cmd)
	if err != nil {
		return nil, err
	}
	dep := &appsv1.Deployment{}
	if err := json.Unmarshal(out, dep); err != nil {
		return nil, fmt.Errorf("kubectl apply printed no Deployment: %w", err)
	}
	return dep, nil
}

// update reads the Deployment and writes it back changed, as a client-go
// program would.
func (d *driver) update(ctx context.Context, l line, w want) (*appsv1.Deployment, error) {
	dep := &appsv1.Deployment{}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := d.r.client.Get(ctx, client.ObjectKey{Namespace: d.r.ns, Name: d.app.name}, dep); err != nil {
			return err
		}
		dep.Spec.Replicas = ptr.To(int32(d.replicas))
		if l.act != scale {
			dep.Spec.Template.Spec.Containers[0].Env = d.env(w.template)
			dep.Annotations[canary.AnnotationEnabled] = canary.EnabledValue
			if w.optOut {
				dep.Annotations[canary.AnnotationEnabled] = canary.DisabledValue
			}
			delete(dep.Annotations, canary.AnnotationSkipAnalysis)
			if w.skip {
				dep.Annotations[canary.AnnotationSkipAnalysis] = "true"
			}
		}
		return d.r.client.Update(ctx, dep)
	})
	if err != nil {
		return nil, err
	}
	return dep, nil
}

// undo runs kubectl rollout undo, which sends the template of the previous
// ReplicaSet: an old template, applied anew. kubectl prints no object, so
// the result comes from the watch. The undo also restores the annotations
// that ReplicaSet was made with: when it was rolled out with skip-analysis
// or opt-out, so is the undo, and the Deployment is then brought back into
// sluice's care by a client-go update, as a user would.
func (d *driver) undo(ctx context.Context, l line) {
	d.r.ledger.mu.Lock()
	// The watch may lag behind the answer to the last update.
	since := d.app.seenRV
	for _, u := range d.app.updates {
		since = max(since, u.rv)
	}
	d.r.ledger.mu.Unlock()
	u := d.begin(l, "")
	_, err := output(d.r.env.Kubectl(ctx, "rollout", "undo", "-n", d.r.ns, "--request-timeout=20s", "deployment/"+d.app.name))
	var after version
	switch {
	case err != nil && strings.Contains(err.Error(), guard):
		u.result, u.err = refused, err.Error()
	case err != nil && (strings.Contains(err.Error(), "skipped rollback") || strings.Contains(err.Error(), "no rollout history")):
		u.result, u.err = passed, err.Error()
	default:
		u.result = notApplied
		if err != nil {
			u.err = err.Error()
		}
		after = d.observe(ctx, u, since)
	}
	d.end(u)
	if u.accepted() && (after.skip || !after.optedIn) {
		l.path = clientGo
		for d.send(ctx, l, "", want{template: d.primary()}).result > passed && ctx.Err() == nil {
			d.r.pause(ctx, time.Second)
		}
	}
}

// observe finds what an undo sent: the first version after since with a
// template that was neither the primary nor the canary then, as the canary
// (diverted) or as the primary (plain). Nothing else writes the Deployment
// meanwhile but the shifter, which only promotes the canary. The watch may
// be away (an API server restart): then the Deployment is read, and its
// resourceVersion is a bound, not the undo's own.
func (d *driver) observe(ctx context.Context, u *update, since uint64) version {
	var found version
	var base version
	// sent records v as the undo's result if it carries a new template.
	sent := func(v version) bool {
		t := undoTemplate(base, v)
		if t == "" {
			return false
		}
		u.template = t
		u.rv = v.rv
		u.pendingTemplate, u.pendingRevision, u.primary = v.pendingTemplate, v.pendingRevision, v.primary
		u.result, found = classify(u, v), v
		return true
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		d.r.ledger.mu.Lock()
		defer d.r.ledger.mu.Unlock()
		for _, v := range d.app.versions {
			if v.rv <= since {
				base = v
			} else if sent(v) {
				return true, nil
			}
		}
		return false, nil
	})
	if err == nil {
		return found
	}
	_ = wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		dep := &appsv1.Deployment{}
		if err := d.r.client.Get(ctx, client.ObjectKey{Namespace: d.r.ns, Name: d.app.name}, dep); err != nil {
			return false, nil
		}
		sent(versionOf(dep))
		return true, nil
	})
	return found
}

// undoTemplate is the template an undo sent, if v is its result after base:
// a template that was neither the primary nor the canary in base, as the
// canary or as the primary; "" if v carries none. An undo to a template that
// ran with skip-analysis or opt-out is a plain rollout: the canary
// annotations it restores from the old ReplicaSet (where the Deployment
// controller copies every annotation the Deployment had) are left over, not
// diverted, when the webhook is down and cannot drop them.
func undoTemplate(base, v version) string {
	old := func(t string) bool { return t == "" || t == base.primary || t == base.pendingTemplate }
	switch {
	case (v.skip || !v.optedIn) && !old(v.primary):
		return v.primary
	case !old(v.pendingTemplate):
		return v.pendingTemplate
	case !old(v.primary):
		return v.primary
	default:
		return ""
	}
}

// waitFor waits, after a diverted update, until its canary has settled or
// is taking traffic, as line l says; or for a minute at most.
func (d *driver) waitFor(ctx context.Context, u *update, until until) {
	if until == nothing {
		return
	}
	_ = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		d.r.ledger.mu.Lock()
		defer d.r.ledger.mu.Unlock()
		if d.app.seenRV < u.rv {
			return false, nil
		}
		if n := len(d.app.versions); n > 0 && d.app.versions[n-1].pendingRevision != u.pendingRevision {
			return true, nil // promoted, or replaced
		}
		s := d.app.lastStatus()
		if s == nil || s.rv < u.rv || s.st.CanaryRevision != u.pendingRevision {
			return false, nil
		}
		switch s.st.Phase {
		case canary.PhaseFailed, canary.PhaseSucceeded:
			return true, nil
		case canary.PhaseProgressing:
			return until == analysing && s.st.CanaryWeight > 0, nil
		}
		return false, nil
	})
}

// output runs cmd and returns its standard output, or an error with its
// standard error.
func output(cmd *exec.Cmd) ([]byte, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return nil, fmt.Errorf("%s: %s", strings.Join(cmd.Args[3:], " "), strings.TrimSpace(stderr.String()))
		}
		return nil, err
	}
	return out, nil
}
