// Package mutate is sluice's admission webhook: it keeps the running pod
// template of an opted-in Deployment (the primary) and diverts a new one into
// an annotation, from which the shifter runs it as a canary.
package mutate

import (
	"fmt"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"

	"sluice.dev/sluice/pkg/canary"
)

// Verdict is what the webhook did with one request; it is also the result
// label of sluice_webhook_admissions_total.
type Verdict string

// The verdicts.
const (
	// Passed: the update goes through as sent (perhaps with a pending canary
	// carried over from the stored object).
	Passed Verdict = "passed"
	// Diverted: the new pod template went to the canary annotation.
	Diverted Verdict = "diverted"
	// Cleared: a pending canary was dropped from the Deployment.
	Cleared Verdict = "cleared"
	// Denied: the request breaks a rule; nothing of it is stored.
	Denied Verdict = "denied"
	// Errored: the request could not be read.
	Errored Verdict = "error"
)

// maxAnnotationBytes is the API server's limit on the total size of an
// object's annotations (keys and values).
const maxAnnotationBytes = 256 * 1024

// Request is what Decide needs of an admission request.
type Request struct {
	Operation admissionv1.Operation
	// FromShifter is true when the requester is one of the shifter's identities.
	FromShifter bool
	// Object and OldObject are the Deployment after and before, as JSON.
	Object, OldObject []byte
}

// Decision is the webhook's answer to one request.
type Decision struct {
	Verdict Verdict
	// Patch is a JSON patch for the incoming object; nil for none.
	Patch []byte
	// Message explains a denial or an error.
	Message string
	// Revision names the pending canary template after the request, if any.
	Revision string
	// Warnings are shown to the user (kubectl prints them).
	Warnings []string
}

// Decide applies the webhook's rules to one request, checking its settings
// against the installation's valid defaults. It is a pure function of the
// two: the same request always gets the same decision, and nothing is read
// from or written to the cluster.
func Decide(defaults canary.Defaults, req Request) Decision {
	if req.FromShifter {
		// The shifter writes promotions; they must land as sent.
		return Decision{Verdict: Passed}
	}
	obj := parse(req.Object)
	if problems := obj.problems(defaults); len(problems) > 0 {
		return deny("invalid sluice settings: " + strings.Join(problems, "; "))
	}
	if req.Operation != admissionv1.Update {
		return decideCreate(obj)
	}
	old := parse(req.OldObject)
	if !obj.valid() || !old.valid() {
		// The API server always sends both; anything else is not a Deployment.
		return Decision{Verdict: Errored, Message: "the object or the oldObject has no spec.template object; is it an apps/v1 Deployment?"}
	}
	return decideUpdate(old, obj)
}

func decideCreate(obj deployment) Decision {
	if obj.pending.set() {
		return deny(fmt.Sprintf("%s and %s are written only by sluice; remove them from the manifest",
			canary.AnnotationCanaryTemplate, canary.AnnotationCanaryRevision))
	}
	// A first release runs as usual; the shifter sets up routing for it.
	return Decision{Verdict: Passed}
}

func decideUpdate(old, obj deployment) Decision {
	switch {
	case !canary.Enabled(obj.annotations):
		// Opted out (or never in): the update rolls out as a plain rolling
		// update, and a Deployment that is not opted in carries no canary.
		return obj.dropPending(old, "opt-in is off")
	case obj.annotations[canary.AnnotationSkipAnalysis] == "true":
		return obj.dropPending(old, canary.AnnotationSkipAnalysis+" is true")
	case !canary.Enabled(old.annotations):
		return optIn(old, obj)
	case old.annotations[canary.AnnotationSkipAnalysis] == "true" && obj.template == old.template &&
		obj.pending.set() && obj.pending.equal(old.pending):
		// While skip-analysis is on the webhook keeps no canary, so these
		// are left from an update that came while it was down. (A template
		// change that ends skip-analysis is diverted as usual.)
		return dropLeftover(obj, "turns "+canary.AnnotationSkipAnalysis+" off")
	case obj.template == old.template:
		return decideUnchanged(old, obj)
	default:
		return divert(old, obj)
	}
}

// optIn handles an update that turns opt-in on: sluice takes over from the
// next template change. The webhook is not called while a Deployment is not
// opted in, so canary annotations it carries are set by this update, which
// only sluice may do, or left from an opt-out that came while the webhook was
// down.
func optIn(old, obj deployment) Decision {
	switch {
	case obj.pending.set() && !obj.pending.equal(old.pending):
		return deny(fmt.Sprintf("%s and %s are written only by sluice, and this update sets them while it turns %s on; "+
			"leave them out of the manifest", canary.AnnotationCanaryTemplate, canary.AnnotationCanaryRevision, canary.AnnotationEnabled))
	case obj.pending.set():
		return dropLeftover(obj, "turns "+canary.AnnotationEnabled+" on")
	default:
		return Decision{Verdict: Passed}
	}
}

// dropLeftover clears canary annotations that an update the webhook did not
// see left behind: that update (an opt-out or skip-analysis) gave the canary up.
func dropLeftover(obj deployment, update string) Decision {
	return Decision{Verdict: Cleared, Patch: obj.removePending(), Warnings: []string{fmt.Sprintf(
		"sluice: this update %s, so the canary annotations (revision %s) left from an update the webhook did not see were dropped; "+
			"sluice takes over from the next change of the pod template", update, obj.pending.revision)}}
}

// decideUnchanged handles an update that leaves the pod template as the
// primary's.
func decideUnchanged(old, obj deployment) Decision {
	switch {
	case !obj.pending.set() && old.pending.set():
		// A PUT from scratch (kubectl replace, some Helm upgrades) lacks the
		// annotations: keep the pending canary rather than lose it.
		if appliedTemplateChanged(old, obj) {
			return Decision{Verdict: Cleared, Warnings: []string{cancelWarning(old.pending.revision)}}
		}
		var p patch
		if old.pending.hasTemplate {
			p.addString(annotationPath(canary.AnnotationCanaryTemplate), old.pending.template)
		}
		if old.pending.hasRevision {
			p.addString(annotationPath(canary.AnnotationCanaryRevision), old.pending.revision)
		}
		return Decision{Verdict: Passed, Patch: p.bytes(), Revision: old.pending.revision}
	case obj.pending.equal(old.pending):
		if old.pending.set() && appliedTemplateChanged(old, obj) {
			// `kubectl apply` of the primary's template: the user cancels.
			return Decision{Verdict: Cleared, Patch: obj.removePending(), Warnings: []string{cancelWarning(old.pending.revision)}}
		}
		return Decision{Verdict: Passed, Revision: obj.pending.revision}
	case obj.pending.consistent():
		// Exactly what divert writes: this is the webhook's own earlier
		// mutation, seen again when the API server reinvokes it.
		return Decision{Verdict: Passed, Revision: obj.pending.revision}
	default:
		return denyForged()
	}
}

// divert keeps the primary's template on the Deployment and stores the new
// one in the canary annotations; every other change of the update stays.
// Whatever the update put in the canary annotations is overwritten: `kubectl
// rollout undo`, for one, restores them from an old ReplicaSet.
func divert(old, obj deployment) Decision {
	revision := canary.Revision([]byte(obj.template))
	size := obj.annotationBytes() - obj.pending.bytes() +
		len(canary.AnnotationCanaryTemplate) + len(obj.template) + len(canary.AnnotationCanaryRevision) + len(revision)
	if size > maxAnnotationBytes {
		return deny(fmt.Sprintf("the new pod template is %d bytes of JSON; sluice keeps it in the annotation %s until it is promoted, "+
			"and with it the Deployment's annotations would total %d bytes, over the API server's limit of %d bytes (256 KiB); "+
			"make the template or the other annotations smaller, or set %s: \"true\" to roll it out without a canary",
			len(obj.template), canary.AnnotationCanaryTemplate, size, maxAnnotationBytes, canary.AnnotationSkipAnalysis))
	}
	var p patch
	// The primary's template, byte for byte as stored: no generic diff.
	p.replaceRaw("/spec/template", old.template)
	p.addString(annotationPath(canary.AnnotationCanaryTemplate), obj.template)
	p.addString(annotationPath(canary.AnnotationCanaryRevision), revision)
	d := Decision{Verdict: Diverted, Patch: p.bytes(), Revision: revision}
	if sent := obj.pending; sent.consistent() && !sent.equal(old.pending) && sent.revision != revision {
		// The update brought a canary template of its own: `kubectl rollout
		// undo` copies one from an old ReplicaSet, and on reinvocation after
		// another webhook changed the template it is the one sluice diverted
		// a moment ago. Say which one is replaced, so that none goes unseen.
		d.Warnings = []string{fmt.Sprintf("sluice: this update also set the canary template to revision %s; "+
			"the new pod template (revision %s) replaces it as the canary", sent.revision, revision)}
	}
	return d
}

// dropPending passes an update that leaves sluice's care, removing a pending
// canary and telling the user about it.
func (obj deployment) dropPending(old deployment, why string) Decision {
	if !obj.pending.set() {
		return Decision{Verdict: Passed}
	}
	d := Decision{Verdict: Cleared, Patch: obj.removePending()}
	if rev := old.pending.revision; rev != "" {
		d.Warnings = []string{fmt.Sprintf("sluice: %s, so the pending canary (revision %s) was dropped; "+
			"this update rolls out as a plain rolling update", why, rev)}
	}
	return d
}

// appliedTemplateChanged reports whether a client-side `kubectl apply`
// changed the pod template it applies. When it did and yet the merged
// template equals the primary's, the user applied the primary's version again.
//
// `kubectl replace` and `kubectl edit` rewrite an existing record with the
// object they send, which for a copy of the live Deployment holds the
// primary's template and sluice's own annotations. Such a record is not the
// user's manifest and cancels nothing.
func appliedTemplateChanged(old, obj deployment) bool {
	if obj.lastApplied == "" || obj.lastApplied == old.lastApplied {
		return false
	}
	applied := parseApplied(obj.lastApplied)
	if applied.recordsPending() {
		return false
	}
	return applied.template() != parseApplied(old.lastApplied).template()
}

func cancelWarning(revision string) string {
	return fmt.Sprintf("sluice: the applied pod template is the running primary's, so the pending canary (revision %s) is cancelled", revision)
}

func deny(message string) Decision {
	return Decision{Verdict: Denied, Message: message}
}

func denyForged() Decision {
	return deny(fmt.Sprintf("%s and %s are written only by sluice: this update sets or changes them. "+
		"Leave them out of the manifest or keep the values the Deployment has; "+
		"to cancel a pending canary, apply the running version again", canary.AnnotationCanaryTemplate, canary.AnnotationCanaryRevision))
}
