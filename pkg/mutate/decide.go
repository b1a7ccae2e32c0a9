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
	// FieldManager is the fieldManager of the request's options, which names
	// the client: kubectl-client-side-apply for `kubectl apply`,
	// kubectl-replace for `kubectl replace`. The API server hands a PATCH to
	// admission as an UPDATE with UpdateOptions, as it does a PUT, so the
	// field manager is all that tells an apply from a replace or an edit.
	FieldManager string
	// FromShifter is true when the requester is one of the shifter's identities.
	FromShifter bool
	// Object and OldObject are the Deployment after and before, as JSON.
	Object, OldObject []byte
	// Policy is the policy the Deployment after the request runs by; nil
	// for none.
	Policy *canary.PolicySnapshot
	// PolicyProblem says why the policy it names cannot be found; "" if it
	// can, or names none.
	PolicyProblem string
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
	if problems := obj.problems(defaults, req.Policy, req.PolicyProblem); len(problems) > 0 {
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
	return decideUpdate(old, obj, req.FieldManager)
}

func decideCreate(obj deployment) Decision {
	if obj.pending.set() {
		return deny(fmt.Sprintf("%s and %s are written only by sluice; remove them from the manifest",
			canary.AnnotationCanaryTemplate, canary.AnnotationCanaryRevision))
	}
	// A first release runs as usual; the shifter sets up routing for it.
	return Decision{Verdict: Passed}
}

func decideUpdate(old, obj deployment, manager string) Decision {
	switch {
	case !canary.Enabled(obj.annotations):
		// Opted out (or never in): the update rolls out as a plain rolling
		// update, and a Deployment that is not opted in carries no canary.
		return obj.dropPending(old, "opt-in is off")
	case obj.annotations[canary.AnnotationSkipAnalysis] == "true":
		return obj.dropPending(old, canary.AnnotationSkipAnalysis+" is true")
	case !canary.Enabled(old.annotations):
		return takeOver(old, obj, "turns "+canary.AnnotationEnabled+" on")
	case old.annotations[canary.AnnotationSkipAnalysis] == "true" && obj.template == old.template && !ownDiversion(old, obj):
		// A template change that ends skip-analysis is diverted as usual,
		// and seen again on reinvocation.
		return takeOver(old, obj, "turns "+canary.AnnotationSkipAnalysis+" off")
	case obj.template == old.template:
		return decideUnchanged(old, obj, manager)
	default:
		return divert(old, obj)
	}
}

// takeOver handles an update that puts a Deployment back in sluice's care
// without a canary of its own: it opts in, or turns skip-analysis off without
// a new template. Sluice takes over from the next template change. Until this
// update the webhook either was not called (not opted in) or dropped every
// canary (skip-analysis), so canary annotations on the stored Deployment are
// left from an opt-out or a skip-analysis update that came while the webhook
// was down, and were given up by it: they go, whether the update carries them
// or not. Setting others is for sluice alone.
func takeOver(old, obj deployment, update string) Decision {
	switch {
	case obj.pending.set() && !obj.pending.equal(old.pending):
		return deny(fmt.Sprintf("%s and %s are written only by sluice, and this update sets them while it %s; "+
			"leave them out of the manifest", canary.AnnotationCanaryTemplate, canary.AnnotationCanaryRevision, update))
	case old.pending.set():
		d := Decision{Verdict: Cleared, Warnings: []string{fmt.Sprintf(
			"sluice: this update %s, so the canary annotations (revision %s) left from an update the webhook did not see were dropped; "+
				"sluice takes over from the next change of the pod template", update, old.pending.revision)}}
		if obj.pending.set() {
			d.Patch = obj.removePending()
		}
		return d
	default:
		return Decision{Verdict: Passed}
	}
}

// ownDiversion reports whether the update carries the canary pair that divert
// writes, different from the stored one: the webhook's own work, seen again
// when the API server reinvokes it.
func ownDiversion(old, obj deployment) bool {
	return obj.pending.consistent() && !obj.pending.equal(old.pending)
}

// decideUnchanged handles an update that leaves the pod template as the
// primary's.
func decideUnchanged(old, obj deployment, manager string) Decision {
	switch {
	case !obj.pending.set() && old.pending.set():
		// A PUT from scratch (kubectl replace, some Helm upgrades) lacks the
		// annotations, as does an edit that removed them: keep the pending
		// canary rather than lose it, unless kubectl apply cancels it.
		if cancel := cancellation(old, obj, manager); cancel != "" {
			return Decision{Verdict: Cleared, Warnings: []string{cancel}}
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
		if !old.pending.set() {
			return Decision{Verdict: Passed}
		}
		if cancel := cancellation(old, obj, manager); cancel != "" {
			return Decision{Verdict: Cleared, Patch: obj.removePending(), Warnings: []string{cancel}}
		}
		return Decision{Verdict: Passed, Revision: obj.pending.revision}
	case ownDiversion(old, obj):
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
	if sent := obj.pending.revision; ownDiversion(old, obj) && sent != revision {
		// The update carried a canary template of its own: `kubectl rollout
		// undo` copies one from an old ReplicaSet, and on reinvocation after
		// another webhook changed the pod template it is the one sluice
		// diverted a moment ago. Say which one is replaced, so that none
		// goes unseen.
		d.Warnings = []string{fmt.Sprintf("sluice: this update carried the canary template of revision %s; "+
			"the new pod template (revision %s) replaces it as the canary", sent, revision)}
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

// applyCommands maps the field managers under which `kubectl apply` writes
// its record of the applied manifest to the command, for the warning. With
// --server-side, the API server keeps an existing client-side record up to
// date for the field manager kubectl only.
var applyCommands = map[string]string{
	"kubectl-client-side-apply": "kubectl apply",
	"kubectl":                   "kubectl apply --server-side",
}

// cancellation returns the warning for an update that keeps the primary's
// template and cancels the pending canary, or "" when it cancels nothing.
// Only `kubectl apply` under its own field manager cancels: when its record
// shows that the user applied another template than before, and the update
// still holds the primary's, the user applied the primary's version again.
//
// `kubectl replace` and `kubectl edit` rewrite an existing record with the
// object they send, often a copy of the live Deployment without sluice's
// annotations, whose template is the primary's: no request to cancel. Other
// clients that name no such field manager cancel nothing either.
func cancellation(old, obj deployment, manager string) string {
	command, ok := applyCommands[manager]
	if !ok || !appliedTemplateChanged(old, obj) {
		return ""
	}
	return fmt.Sprintf("sluice: %s (field manager %s) set the pod template back to the running primary's, "+
		"so the pending canary (revision %s) is cancelled; to run it after all, apply its version again",
		command, manager, old.pending.revision)
}

// appliedTemplateChanged reports whether the update rewrote kubectl's record
// of the last apply with a manifest of the user's whose pod template differs
// from the one recorded before.
//
// A record that copies the live object (what `kubectl get` printed) is no
// manifest of the user's: as the new record it changes nothing, and as the
// old one it says nothing of what the user applied last.
func appliedTemplateChanged(old, obj deployment) bool {
	if obj.lastApplied == "" || obj.lastApplied == old.lastApplied {
		return false
	}
	applied, before := parseApplied(obj.lastApplied), parseApplied(old.lastApplied)
	switch {
	case applied.copiesLiveObject():
		return false
	case before.copiesLiveObject():
		return true
	default:
		return applied.template() != before.template()
	}
}

func deny(message string) Decision {
	return Decision{Verdict: Denied, Message: message}
}

func denyForged() Decision {
	return deny(fmt.Sprintf("%s and %s are written only by sluice: this update sets or changes them. "+
		"Leave them out of the manifest or keep the values the Deployment has; "+
		"to cancel a pending canary, apply the running version again", canary.AnnotationCanaryTemplate, canary.AnnotationCanaryRevision))
}
