package canary

import (
	"encoding/json"
	"maps"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Sources of a setting, as the Canary status shows them besides a policy's
// kind and name.
const (
	SourceAnnotation = "annotation"
	SourceDefault    = "default"
)

// PolicyRef is a policy a Deployment may run by.
type PolicyRef struct {
	// Kind is KindCanaryPolicy or KindClusterCanaryPolicy.
	Kind string
	Name string
}

// String names the policy as events and messages do: "CanaryPolicy strict".
func (r PolicyRef) String() string { return r.Kind + " " + r.Name }

// ReferencedPolicies returns the policies that annotations name, in the
// order to look them up: the first that exists applies. A name alone means
// the CanaryPolicy of the Deployment's namespace, else the
// ClusterCanaryPolicy of that name; "cluster/NAME" only the latter. explicit
// is false when the annotation names none: then the default
// ClusterCanaryPolicy applies if it exists. A malformed name gives no
// policy; Parse reports it.
func ReferencedPolicies(annotations map[string]string) (refs []PolicyRef, explicit bool) {
	raw, ok := annotations[AnnotationPolicy]
	if !ok {
		return []PolicyRef{{Kind: KindClusterCanaryPolicy, Name: DefaultClusterPolicy}}, false
	}
	name, cluster := strings.CutPrefix(raw, ClusterPolicyPrefix)
	switch {
	case !validPolicyName(name):
		return nil, true
	case cluster:
		return []PolicyRef{{Kind: KindClusterCanaryPolicy, Name: name}}, true
	default:
		return []PolicyRef{{Kind: KindCanaryPolicy, Name: name}, {Kind: KindClusterCanaryPolicy, Name: name}}, true
	}
}

// ParseWithPolicy reads the settings of a Deployment that runs by policy p
// (nil for none): its annotations, then p's settings for those they leave
// out, then d's. It also returns where each setting came from, keyed by the
// annotation's name without its prefix, and the problems as Parse does.
func (d Defaults) ParseWithPolicy(p *PolicySnapshot, annotations map[string]string) (Settings, map[string]string, []string) {
	fromPolicy := map[string]string{}
	if p != nil {
		fromPolicy = p.Spec.annotations()
	}
	merged := maps.Clone(fromPolicy)
	maps.Copy(merged, annotations)
	_, ownStep := annotations[AnnotationStepWeight]
	_, ownSteps := annotations[AnnotationStepWeights]
	if ownStep && !ownSteps {
		// The Deployment's step-weight overrides the policy's weights, as
		// its own step-weights would.
		delete(merged, AnnotationStepWeights)
	}
	s, problems := d.Parse(merged)
	if p != nil {
		s.Checks, s.Prometheus = p.Spec.Checks, p.Spec.Prometheus
		s.Webhooks, s.Alerts = p.Spec.Webhooks, p.Spec.Alerts
	}
	sources := make(map[string]string, len(policySettings))
	for _, key := range policySettings {
		_, own := annotations[key]
		_, inherited := merged[key]
		source := SourceDefault
		switch {
		case own:
			source = SourceAnnotation
		case inherited:
			source = PolicyRef{Kind: p.Kind, Name: p.Name}.String()
		}
		sources[strings.TrimPrefix(key, Prefix)] = source
	}
	return s, sources, problems
}

// policySettings are the settings whose source the status tells: those a
// policy can stand in for, but the release styles.
var policySettings = []string{
	AnnotationStepWeight, AnnotationStepWeights, AnnotationMaxWeight, AnnotationInterval, AnnotationThreshold,
	AnnotationMinSuccessRate, AnnotationMaxRequestDuration, AnnotationAnalysisWindow, AnnotationMinRequests,
	AnnotationEvidenceDeadline, AnnotationBlindDeadline, AnnotationProgressDeadline,
	AnnotationConfirmRollout, AnnotationConfirmPromotion, AnnotationRouter,
}

// annotations are the annotations that would set what p sets: the one
// parser then holds every rule, whichever way a setting was given.
func (p PolicySpec) annotations() map[string]string {
	a := map[string]string{}
	for key, v := range map[string]*int32{
		AnnotationStepWeight: p.StepWeight, AnnotationMaxWeight: p.MaxWeight, AnnotationThreshold: p.Threshold,
		AnnotationMinRequests: p.MinRequests,
	} {
		if v != nil {
			a[key] = strconv.FormatInt(int64(*v), 10)
		}
	}
	for key, v := range map[string]*metav1.Duration{
		AnnotationInterval: p.Interval, AnnotationMaxRequestDuration: p.MaxRequestDuration, AnnotationAnalysisWindow: p.AnalysisWindow,
		AnnotationEvidenceDeadline: p.EvidenceDeadline, AnnotationBlindDeadline: p.BlindDeadline, AnnotationProgressDeadline: p.ProgressDeadline,
	} {
		if v != nil {
			a[key] = v.Duration.String()
		}
	}
	for key, v := range map[string]*Gate{AnnotationConfirmRollout: p.ConfirmRollout, AnnotationConfirmPromotion: p.ConfirmPromotion} {
		if v != nil {
			a[key] = string(*v)
		}
	}
	if p.Router != nil {
		a[AnnotationRouter] = *p.Router
	}
	if p.Iterations != nil {
		a[AnnotationIterations] = strconv.FormatInt(int64(*p.Iterations), 10)
	}
	if p.MirrorPercent != nil {
		a[AnnotationMirrorPercent] = strconv.FormatInt(int64(*p.MirrorPercent), 10)
	}
	if p.Mirror != nil {
		a[AnnotationMirror] = strconv.FormatBool(*p.Mirror)
	}
	if p.SessionCookie != nil {
		a[AnnotationSessionCookie] = *p.SessionCookie
	}
	if len(p.Match) > 0 {
		// Encoding a slice of plain structs cannot fail.
		raw, _ := json.Marshal(p.Match)
		a[policyMatch] = string(raw)
	}
	if p.MinSuccessRate != nil {
		a[AnnotationMinSuccessRate] = strconv.FormatFloat(*p.MinSuccessRate, 'g', -1, 64)
	}
	if len(p.StepWeights) > 0 {
		weights := make([]string, len(p.StepWeights))
		for i, w := range p.StepWeights {
			weights[i] = strconv.FormatInt(int64(w), 10)
		}
		a[AnnotationStepWeights] = strings.Join(weights, ",")
	}
	return a
}
